"""``crmkit dataquality``: what the plugin found."""

from __future__ import annotations

import click
from crmkit.cli.context import CliContext, pass_cli
from crmkit.cli.output import echo_json, echo_table, json_option

from crmkit_dataquality import duplicates


@click.group()
def dataquality() -> None:
    """Data quality: suspected duplicate customers."""


@dataquality.command("duplicates")
@click.option("--customer", "customer_id", type=int, help="Only flags naming this customer.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
@pass_cli
def dataquality_duplicates(cli: CliContext, customer_id: int | None, limit: int,
                           as_json: bool) -> None:
    """List customers that share an e-mail address or phone number, newest first."""
    with cli.crm.session() as session:
        rows = duplicates.listing(session, customer_id, limit)
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["customer_id", "name", "duplicate_of_id", "duplicate_of_name",
                          "reason", "detected_at"], "No suspected duplicates.")
