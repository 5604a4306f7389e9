"""``crmkit doctor``: is this deployment healthy? Each problem comes with its fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import click
from sqlalchemy import func, select, text

from crmkit import migrate
from crmkit.cli.context import CliContext, pass_cli
from crmkit.cli.output import echo_json, json_option
from crmkit.errors import CrmkitError
from crmkit.models import OutboxEvent


@attrs.define
class Check:
    name: str
    status: str = "ok"
    detail: str = ""
    fix: str = ""


def _run(checks: list[Check], name: str, probe: Callable[[Check], None]) -> bool:
    check = Check(name)
    checks.append(check)
    try:
        probe(check)
    except CrmkitError as exc:
        check.status, check.detail = "fail", str(exc)
    except Exception as exc:  # doctor reports every failure instead of stopping at one
        check.status, check.detail = "fail", f"{type(exc).__name__}: {exc}"
    return check.status != "fail"


@click.command()
@json_option
@pass_cli
def doctor(cli: CliContext, as_json: bool) -> None:
    """Check config, plugins, database, migrations and the outbox; exit 1 on failure."""
    checks: list[Check] = []

    def config(check: Check) -> None:
        check.detail = f"{cli.config.source} is valid"
        check.fix = "" if cli.config.path else "run `crmkit init` to create a crmkit.toml"

    def plugins(check: Check) -> None:
        names = [n for n in cli.crm.host.names() if n != "crmkit"]
        check.detail = f"loaded: {', '.join(names) or 'none'}"

    def database(check: Check) -> None:
        with cli.crm.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        check.detail = cli.crm.engine.url.render_as_string(hide_password=True)

    def migrations(check: Check) -> None:
        behind = [s for s in migrate.status(cli.crm) if not s.at_head]
        if behind:
            check.status = "fail"
            check.detail = "; ".join(f"{s.branch} at {s.current or 'nothing'}, head {s.head}"
                                     for s in behind)
            check.fix = "run `crmkit db upgrade`"
        else:
            check.detail = "every branch at head"

    def plugin_state(check: Check) -> None:
        recorded = migrate.recorded_plugins(cli.crm)
        with_tables = set(migrate.branches(cli.crm)) - {"crmkit"}
        disabled = sorted(set(recorded) - set(cli.crm.host.names()))
        if disabled:
            check.status = "warn"
            check.detail = f"the database holds tables of disabled plugins: {', '.join(disabled)}"
            check.fix = "enable them again, or keep the data on purpose"
        missing = sorted(with_tables - set(recorded))
        if missing:
            check.status = "fail"
            check.detail = f"enabled plugins without tables: {', '.join(missing)}"
            check.fix = "run `crmkit db upgrade`"
        if check.status == "ok":
            check.detail = "enabled plugins and the database agree"

    def outbox(check: Check) -> None:
        with cli.crm.session() as session:
            counts: dict[str, Any] = {status: n for status, n in session.execute(
                select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status))}
        check.detail = f"pending {counts.get('pending', 0)}, dead {counts.get('dead', 0)}"
        if counts.get("dead"):
            check.status = "warn"
            check.fix = "see `crmkit events list --status dead`, then `crmkit events retry --dead`"

    if (_run(checks, "config", config) and _run(checks, "plugins", plugins)
            and _run(checks, "database", database)):
        _run(checks, "migrations", migrations)
        _run(checks, "plugin state", plugin_state)
        _run(checks, "outbox", outbox)
    if as_json:
        echo_json([attrs.asdict(c) for c in checks])
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for c in checks:
            click.echo(f"[{marks[c.status]}] {c.name}: {c.detail}")
            if c.fix and c.status != "ok":
                click.echo(f"       fix: {c.fix}")
    if any(c.status == "fail" for c in checks):
        raise SystemExit(1)
