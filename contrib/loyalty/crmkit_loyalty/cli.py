"""``crmkit loyalty``: a customer's points and tier, and the best customers."""

from __future__ import annotations

import click
from crmkit.cli.context import CliContext, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option

from crmkit_loyalty import points
from crmkit_loyalty.settings import Settings


@click.group()
def loyalty() -> None:
    """Loyalty programme: points earned from purchases, and tiers."""


@loyalty.command("show")
@click.argument("customer_id", type=int)
@json_option
@pass_cli
def loyalty_show(cli: CliContext, customer_id: int, as_json: bool) -> None:
    """Show a customer's points and tier."""
    settings = Settings.of(cli.crm)
    with cli.crm.transaction(actor="cli") as tx:
        customer = tx.customers.get(customer_id)  # NotFound: a clear error, exit 1
        total = points.balance(tx.session, customer.id)
        data = {"customer_id": customer.id, "name": customer.name, "points": total,
                "tier": settings.tier(total)}
    if as_json:
        echo_json(data)
    else:
        echo_record(data)


@loyalty.command("top")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="How many customers to list.")
@json_option
@pass_cli
def loyalty_top(cli: CliContext, limit: int, as_json: bool) -> None:
    """List the customers with the most points."""
    settings = Settings.of(cli.crm)
    with cli.crm.session() as session:
        rows = [{"customer_id": customer_id, "points": total, "tier": settings.tier(total)}
                for customer_id, total in points.top(session, limit)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["customer_id", "points", "tier"], "No customer has points yet.")
