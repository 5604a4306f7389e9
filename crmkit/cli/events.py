"""``crmkit events`` and ``crmkit worker``: the outbox and its delivery."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click
from sqlalchemy import func, select

from crmkit.cli.context import CliContext, pass_cli
from crmkit.cli.output import echo_json, echo_table, json_option
from crmkit.models import EVENT_STATUSES, OutboxEvent
from crmkit.worker import run_worker


@click.group()
def events() -> None:
    """Domain events in the outbox: list, dispatch, retry."""


@events.command("list")
@click.option("--status", type=click.Choice(EVENT_STATUSES))
@click.option("--name", help="Only events with this name, e.g. customer.created.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@pass_cli
def events_list(cli: CliContext, status: str | None, name: str | None, limit: int,
                as_json: bool) -> None:
    """List outbox events, newest first, with their delivery state."""
    query = select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(limit)
    if status:
        query = query.where(OutboxEvent.status == status)
    if name:
        query = query.where(OutboxEvent.name == name)
    with cli.crm.session() as session:
        rows = [e.to_dict() for e in session.scalars(query)]
        counts = {k: n for k, n in session.execute(
            select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status))}
    if as_json:
        echo_json(rows)
        return
    for row in rows:  # a delivered or dead event has no next attempt
        row["due"] = row["next_attempt_at"] if row["status"] == "pending" else None
    echo_table(rows, ["id", "name", "status", "attempts", "created_at", "due", "last_error"],
               "No events match.")
    click.echo("Totals: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in EVENT_STATUSES))


@events.command("retry")
@click.argument("event_ids", type=int, nargs=-1)
@click.option("--dead", "all_dead", is_flag=True, help="Retry every dead event.")
@click.option("--yes", is_flag=True, help="Do not ask before retrying every dead event.")
@pass_cli
def events_retry(cli: CliContext, event_ids: tuple[int, ...], all_dead: bool, yes: bool) -> None:
    """Make events due again with a fresh attempt count (by id, or --dead for all)."""
    if not event_ids and not all_dead:
        raise click.UsageError("give event ids, or --dead for every dead event")
    if event_ids and all_dead:
        raise click.UsageError("give event ids or --dead, not both")
    if all_dead and not yes:
        click.confirm("Resend every dead event to every plugin that has not handled it?",
                      abort=True)
    count = cli.crm.dispatcher.retry(event_ids, all_dead=all_dead)
    click.echo(f"{count} event(s) will be delivered again.")


@events.command("dispatch")
@click.option("--limit", type=click.IntRange(1, 100000), default=1000, show_default=True)
@json_option
@pass_cli
def events_dispatch(cli: CliContext, limit: int, as_json: bool) -> None:
    """Deliver due events once, then stop (what `crmkit worker` does in a loop)."""
    total: dict[str, Any] = {"delivered": 0, "retrying": 0, "dead": 0}
    with click.progressbar(length=limit, label="Dispatching",
                           file=sys.stderr) as bar:
        remaining = limit
        while remaining > 0:
            result = cli.crm.dispatcher.run_once(limit=min(remaining, 100))
            if result.claimed == 0:
                break
            for key in total:
                total[key] += getattr(result, key)
            remaining -= result.claimed
            bar.update(result.claimed)
    if as_json:
        echo_json(total)
    else:
        click.echo(", ".join(f"{k} {v}" for k, v in total.items()))


@click.command()
@click.option("--poll", type=click.FloatRange(0.05, 3600), default=1.0, show_default=True,
              help="Seconds to wait when nothing is due.")
@pass_cli
def worker(cli: CliContext, poll: float) -> None:
    """Deliver outbox events and fire due workflow timers until stopped (SIGTERM or
    Ctrl-C finish the current batch).

    Run one or more per deployment; on PostgreSQL and MariaDB they share the work with
    FOR UPDATE SKIP LOCKED. Each event is delivered at least once, each timer fires once.
    """
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        click.echo(f"Stopping after the current batch (signal {signum})...", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    click.echo(f"Worker started on {cli.crm.engine.url.render_as_string(hide_password=True)}")
    total = run_worker(cli.crm, stop, poll_seconds=poll)
    click.echo(f"Worker stopped: delivered {total.delivered}, retrying {total.retrying}, "
               f"dead {total.dead}; timers fired {total.timers_fired}, failed "
               f"{total.timers_failed}.")
