"""``crmkit db``: schema migrations of the kernel and every enabled plugin."""

from __future__ import annotations

import click

from crmkit import migrate
from crmkit.cli.context import CliContext, pass_cli
from crmkit.cli.output import echo_json, echo_table, json_option


@click.group()
def db() -> None:
    """Create and upgrade the database schema."""


@db.command("upgrade")
@pass_cli
def db_upgrade(cli: CliContext) -> None:
    """Bring the kernel and every enabled plugin to head, in dependency order."""
    result = migrate.upgrade(cli.crm, progress=lambda b: click.echo(f"Upgrading {b}..."))
    for branch in result:
        click.echo(f"{branch.branch}: at {branch.current}")


@db.command("status")
@json_option
@pass_cli
def db_status(cli: CliContext, as_json: bool) -> None:
    """Show each migration branch: where the database is and where head is."""
    rows = [
        {"branch": s.branch, "current": s.current, "head": s.head,
         "state": "at head" if s.at_head else ("not created" if s.current is None else "behind")}
        for s in migrate.status(cli.crm)
    ]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["branch", "current", "head", "state"], "no migration branches")
    if any(row["state"] != "at head" for row in rows):
        raise SystemExit(1)
