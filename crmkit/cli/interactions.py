"""``crmkit interactions``: log contacts with a customer and read the timeline."""

from __future__ import annotations

from typing import Any

import click

from crmkit.cli.context import CliContext, default_actor, pass_cli
from crmkit.cli.output import echo_json, echo_table, json_option
from crmkit.cli.params import JSON_OBJECT


@click.group()
def interactions() -> None:
    """Interactions: every contact with a customer, on its timeline."""


@interactions.command("log")
@click.argument("customer_id", type=int)
@click.option("--channel", required=True, help="phone, email, meeting, visit, ... (see doctor).")
@click.option("--kind", required=True, help="purchase, support, complaint, note, ...")
@click.option("--summary", required=True)
@click.option("--direction", type=click.Choice(["inbound", "outbound"]), default="inbound",
              show_default=True)
@click.option("--at", "occurred_at", help="When, ISO 8601 with offset (default: now).")
@click.option("--payload", type=JSON_OBJECT, help="Kind-specific details as a JSON object.")
@click.option("--amount", help="A decimal amount, e.g. 199.90 (with --currency).")
@click.option("--currency", help="ISO 4217 code, e.g. EUR.")
@json_option
@pass_cli
def interactions_log(cli: CliContext, customer_id: int, channel: str, kind: str, summary: str,
                     direction: str, occurred_at: str | None, payload: dict[str, Any] | None,
                     amount: str | None, currency: str | None, as_json: bool) -> None:
    """Log an interaction on a customer's timeline."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        interaction = tx.interactions.log(
            customer_id, channel=channel, kind=kind, summary=summary, direction=direction,
            occurred_at=occurred_at, payload=payload, amount=amount,
            currency=currency.upper() if currency else None,
        )
        data = interaction.to_dict()
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Logged interaction {data['id']} for customer {customer_id}.")


@interactions.command("list")
@click.argument("customer_id", type=int)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@json_option
@pass_cli
def interactions_list(cli: CliContext, customer_id: int, limit: int, kinds: tuple[str, ...],
                      as_json: bool) -> None:
    """A customer's timeline, newest first."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        rows = [i.to_dict() for i in tx.interactions.timeline(customer_id, limit=limit,
                                                              kinds=kinds or None)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "occurred_at", "channel", "direction", "kind", "summary",
                          "amount", "currency"], f"Customer {customer_id} has no interactions.")
