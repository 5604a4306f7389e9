"""``crmkit rules``: the automation rules, and what one would do with a stored event."""

from __future__ import annotations

import attrs
import click

from crmkit.cli.context import CliContext, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option
from crmkit.errors import NotFound
from crmkit.events import Event
from crmkit.models import OutboxEvent


@click.group()
def rules() -> None:
    """Automation rules: on event E, where criteria C, do action A."""


@rules.command("list")
@json_option
@pass_cli
def rules_list(cli: CliContext, as_json: bool) -> None:
    """List the configured rules and the actions available."""
    rows = [{"name": r.name, "on": r.on, "do": r.action.name, "with": dict(r.params),
             "where": r.where.document if r.where else None, "enabled": r.enabled}
            for r in cli.crm.rules.rules]
    if as_json:
        echo_json({"rules": rows, "actions": [
            {"name": a.name, "owner": a.owner, "description": a.description}
            for a in cli.crm.rules.actions.values()]})
        return
    echo_table(rows, ["name", "on", "do", "where", "with", "enabled"],
               "No rules are configured (see docs/workflows.md).")


@rules.command("test")
@click.argument("rule")
@click.argument("event_id", type=int)
@json_option
@pass_cli
def rules_test(cli: CliContext, rule: str, event_id: int, as_json: bool) -> None:
    """Say whether RULE would act on a stored event, and why, without acting."""
    found = cli.crm.rules.get(rule)
    with cli.crm.session() as session:
        row = session.get(OutboxEvent, event_id)
        if row is None:
            raise NotFound(f"no event with id {event_id}")
        event = Event(id=row.id, name=row.name, payload=dict(row.payload), actor=row.actor,
                      created_at=row.created_at)
    verdict = cli.crm.rules.judge(cli.crm, found, event)
    data = {**attrs.asdict(verdict), "event": event.name, "action": found.action.name,
            "with": dict(found.params)}
    if as_json:
        echo_json(data)
    else:
        echo_record(data)
        click.echo(f"\nWould act: {'yes' if verdict.matches else 'no'} ({verdict.reason}).")
