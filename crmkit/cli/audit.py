"""``crmkit audit``: who changed what, and when."""

from __future__ import annotations

import click

from crmkit.cli.context import CliContext, default_actor, pass_cli
from crmkit.cli.output import echo_json, echo_table, json_option


@click.command()
@click.option("--entity", help="customer, interaction, or a plugin's entity.")
@click.option("--id", "entity_id", help="Only this entity's entries (with --entity).")
@click.option("--actor", help="Only changes by this actor.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--before", type=int, help="Entries older than this audit id (paging).")
@json_option
@pass_cli
def audit(cli: CliContext, entity: str | None, entity_id: str | None, actor: str | None,
          limit: int, before: int | None, as_json: bool) -> None:
    """Show the audit trail, newest first."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        rows = [e.to_dict() for e in tx.audit_log.list(entity=entity, entity_id=entity_id,
                                                       actor=actor, limit=limit, before=before)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "at", "actor", "entity", "entity_id", "action", "changes"],
                   "No audit entries match.")
