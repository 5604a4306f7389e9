"""``crmkit sales``: leads, opportunities, follow-ups and reports.

A group per noun, a command per verb, ``--json`` on everything that lists or shows, and
``--csv`` on reports. User errors (``CrmkitError``) are one line on stderr, exit code 1.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click
from crmkit.cli.context import CliContext, default_actor, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option

from crmkit_sales import imports, leads, opportunities, reports, tasks
from crmkit_sales.settings import Settings

LEAD_COLUMNS = ["id", "status", "score", "company", "contact_name", "email", "source",
                "campaign", "owner"]
OPP_COLUMNS = ["id", "customer_id", "title", "stage", "status", "amount", "currency",
               "close_date", "owner", "probability", "weighted", "category"]
TASK_COLUMNS = ["id", "kind", "title", "due_at", "owner", "status", "lead_id",
                "opportunity_id", "customer_id"]


@click.group()
def sales() -> None:
    """Sales force automation: leads, opportunities, follow-ups, reports."""


def _write(cli: CliContext) -> Any:
    return cli.crm.transaction(actor=default_actor())


def _read(cli: CliContext) -> Any:
    return cli.crm.transaction(actor=default_actor(), readonly=True)


def _show(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(data)
    else:
        echo_record(data)


# -- leads --------------------------------------------------------------------------------


@sales.group("leads")
def leads_group() -> None:
    """Leads: capture, score, qualify, convert."""


def _lead_row(tx: Any, lead: Any, settings: Settings, recent: int | None = None
              ) -> dict[str, Any]:
    return {**lead.to_dict(), "score": leads.score(tx, lead, settings, recent=recent)[0]}


@leads_group.command("add")
@click.option("--contact-name", help="The person's name.")
@click.option("--company", help="The organization's name.")
@click.option("--email")
@click.option("--phone")
@click.option("--title", help="The person's job title.")
@click.option("--country", help="ISO 3166 two-letter code.")
@click.option("--source", required=True, help="Where the lead came from (web, referral, ...).")
@click.option("--campaign", help="The campaign that brought it, if any.")
@click.option("--owner", help="The salesperson responsible.")
@click.option("--notes")
@click.option("--force", is_flag=True, help="Capture it even if it looks like a duplicate.")
@json_option
@pass_cli
def leads_add(cli: CliContext, /, force: bool, as_json: bool, **fields: Any) -> None:
    """Capture a lead by hand (refused if a customer or lead has its e-mail or name)."""
    settings = Settings.of(cli.crm)
    with _write(cli) as tx:
        lead = leads.capture(tx, {k: v for k, v in fields.items() if v is not None},
                             force=force)
        data = _lead_row(tx, lead, settings)
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Lead {data['id']} captured (score {data['score']}).")


@leads_group.command("list")
@click.option("--status", type=click.Choice(["new", "qualified", "disqualified", "converted"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
@json_option
@pass_cli
def leads_list(cli: CliContext, status: str | None, limit: int, as_json: bool) -> None:
    """List leads with their scores."""
    from sqlalchemy import select

    from crmkit_sales.models import Lead

    settings = Settings.of(cli.crm)
    with _read(cli) as tx:
        query = select(Lead).order_by(Lead.id).limit(limit)
        if status:
            query = query.where(Lead.status == status)
        found = list(tx.session.scalars(query))
        recent = leads.recent_activities(tx, [lead.id for lead in found], settings)
        rows = [_lead_row(tx, lead, settings, recent.get(lead.id, 0)) for lead in found]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, LEAD_COLUMNS, "No leads.")


@leads_group.command("show")
@click.argument("lead_id", type=int)
@json_option
@pass_cli
def leads_show(cli: CliContext, lead_id: int, as_json: bool) -> None:
    """Show a lead with its score and the points behind it."""
    with _read(cli) as tx:
        lead = leads.get(tx, lead_id)
        total, why = leads.score(tx, lead)
        data = {**lead.to_dict(), "score": total, "score_details": why}
    if as_json:
        echo_json(data)
        return
    echo_record({k: v for k, v in data.items() if k != "score_details"})
    click.echo("score details:")
    for item in why or [{"points": 0, "why": "no scoring rule matched"}]:
        click.echo(f"  {item['points']:+4d}  {item['why']}")


@leads_group.command("qualify")
@click.argument("lead_id", type=int)
@click.option("--reason", help="Why it is qualified.")
@pass_cli
def leads_qualify(cli: CliContext, lead_id: int, reason: str | None) -> None:
    """Mark a lead as qualified."""
    with _write(cli) as tx:
        leads.set_status(tx, lead_id, "qualified", reason)
    click.echo(f"Lead {lead_id} qualified.")


@leads_group.command("disqualify")
@click.argument("lead_id", type=int)
@click.option("--reason", required=True, help="Why it is disqualified.")
@pass_cli
def leads_disqualify(cli: CliContext, lead_id: int, reason: str) -> None:
    """Mark a lead as disqualified, with a reason."""
    with _write(cli) as tx:
        leads.set_status(tx, lead_id, "disqualified", reason)
    click.echo(f"Lead {lead_id} disqualified.")


@leads_group.command("convert")
@click.argument("lead_id", type=int)
@click.option("--amount", default="0", show_default=True, help="The opportunity's amount.")
@click.option("--currency", help="ISO 4217 code (default: the configured default_currency).")
@click.option("--close-date", help="Expected close date, YYYY-MM-DD (default: in 90 days).")
@click.option("--title", help="The opportunity's title.")
@click.option("--owner", help="Owner of the customer and opportunity (default: the lead's).")
@json_option
@pass_cli
def leads_convert(cli: CliContext, lead_id: int, amount: str, currency: str | None,
                  close_date: str | None, title: str | None, owner: str | None,
                  as_json: bool) -> None:
    """Convert a lead into a customer and an opportunity, in one transaction."""
    with _write(cli) as tx:
        result = leads.convert(tx, lead_id, amount=amount, currency=currency,
                               close_date=close_date, title=title, owner=owner)
    if as_json:
        echo_json(result.to_dict())
    else:
        contact = f", contact {result.contact_id}" if result.contact_id else ""
        click.echo(f"Lead {lead_id} converted: customer {result.customer_id}{contact}, "
                   f"opportunity {result.opportunity_id}.")


@leads_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", help="Source for records that name none.")
@click.option("--on-error", type=click.Choice(["abort", "skip"]), default="abort",
              show_default=True, help="abort: import nothing if a record is bad; skip: import "
              "the good ones and write the bad ones to the reject file.")
@click.option("--reject-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Where --on-error=skip writes rejected records (default: PATH.rejects.json).")
@json_option
@pass_cli
def leads_import(cli: CliContext, path: Path, source: str | None, on_error: str,
                 reject_file: Path | None, as_json: bool) -> None:
    """Import leads from a CSV (header row) or JSON file; duplicates are skipped."""
    records = imports.read_records(path)
    with _write(cli) as tx:
        result = imports.import_leads(tx, records, source=source, on_error=on_error)
    if result.rejected:
        target = reject_file or path.with_name(path.name + ".rejects.json")
        target.write_text(json.dumps(result.rejected, indent=2, ensure_ascii=False),
                          encoding="utf-8")
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"{len(result.created)} leads imported, {len(result.duplicates)} duplicates "
               f"skipped, {len(result.rejected)} rejected.")
    for item in result.duplicates:
        click.echo(f"  record {item['record']}: {item['reason']}")
    if result.rejected:
        click.echo(f"Rejected records written to {target}.")


# -- opportunities ------------------------------------------------------------------------


@sales.group("opps")
def opps_group() -> None:
    """Opportunities and the pipeline."""


def _parse_line(raw: str) -> dict[str, str]:
    parts = raw.split(":", 3)
    if len(parts) != 4:
        raise click.BadParameter(f"{raw!r}: expected DOMAIN:QUANTITY:UNIT_PRICE:ITEM",
                                 param_hint="--line")
    return {"domain": parts[0], "quantity": parts[1], "unit_price": parts[2],
            "item": parts[3]}


@opps_group.command("add")
@click.option("--customer", "customer_id", type=int, required=True,
              help="The customer's id.")
@click.option("--title", required=True, help="What the deal is about.")
@click.option("--amount", help="Total amount (default: the lines' total).")
@click.option("--currency", help="ISO 4217 code (default: the configured default_currency).")
@click.option("--close-date", required=True, help="Expected close date, YYYY-MM-DD.")
@click.option("--owner", help="The salesperson responsible.")
@click.option("--probability", type=int, help="Override the stage's probability (0-100).")
@click.option("--line", "lines", multiple=True,
              help="A product or service, DOMAIN:QUANTITY:UNIT_PRICE:ITEM (repeatable).")
@json_option
@pass_cli
def opps_add(cli: CliContext, customer_id: int, title: str, amount: str | None,
             currency: str | None, close_date: str, owner: str | None,
             probability: int | None, lines: tuple[str, ...], as_json: bool) -> None:
    """Create an opportunity in the pipeline's first stage."""
    parsed = [_parse_line(line) for line in lines]
    with _write(cli) as tx:
        opp = opportunities.create(tx, customer=customer_id, title=title, amount=amount,
                                   currency=currency, close_date=close_date, owner=owner,
                                   probability=probability, lines=parsed)
        data = opportunities.to_dict(tx, opp)
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Opportunity {data['id']} created in stage {data['stage']}.")


@opps_group.command("list")
@click.option("--stage", help="Only opportunities in this stage.")
@click.option("--owner", help="Only this salesperson's.")
@click.option("--customer", "customer_id", type=int, help="Only this customer's.")
@click.option("--status", type=click.Choice(["open", "won", "lost"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
@json_option
@pass_cli
def opps_list(cli: CliContext, stage: str | None, owner: str | None,
              customer_id: int | None, status: str | None, limit: int,
              as_json: bool) -> None:
    """List opportunities."""
    with _read(cli) as tx:
        settings = Settings.of(cli.crm)
        rows = [opportunities.to_dict(tx, o, settings, lines=False) for o in
                opportunities.list_(tx, stage=stage, owner=owner, customer=customer_id,
                                    status=status, limit=limit)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, OPP_COLUMNS, "No opportunities.")


@opps_group.command("show")
@click.argument("opportunity_id", type=int)
@json_option
@pass_cli
def opps_show(cli: CliContext, opportunity_id: int, as_json: bool) -> None:
    """Show an opportunity, its lines and its pipeline history."""
    from crmkit_sales.pipeline import PIPELINE, SUBJECT

    with _read(cli) as tx:
        opp = opportunities.get(tx, opportunity_id)
        data = opportunities.to_dict(tx, opp)
        instance = tx.workflows.find(PIPELINE, SUBJECT, opp.id)
        data["history"] = [
            {"at": s.at.isoformat(), "transition": s.transition, "from": s.from_state,
             "to": s.to_state, "actor": s.actor, "reason": (s.data or {}).get("reason")}
            for s in (tx.workflows.history(instance) if instance else [])]
    if as_json:
        echo_json(data)
        return
    echo_record({k: v for k, v in data.items() if k not in ("lines", "history")})
    click.echo("lines:")
    echo_table(data["lines"], ["item", "domain", "quantity", "unit_price", "total"],
               "  (none)")
    click.echo("history:")
    echo_table(data["history"], ["at", "transition", "from", "to", "actor", "reason"],
               "  (none)")


@opps_group.command("move")
@click.argument("opportunity_id", type=int)
@click.argument("stage")
@pass_cli
def opps_move(cli: CliContext, opportunity_id: int, stage: str) -> None:
    """Move an opportunity to STAGE, if the pipeline allows it."""
    with _write(cli) as tx:
        step = opportunities.move(tx, opportunity_id, stage)
        text = f"Opportunity {opportunity_id}: {step.from_state} -> {step.to_state}."
    click.echo(text)


@opps_group.command("win")
@click.argument("opportunity_id", type=int)
@click.option("--reason", required=True, help="Why the deal was won.")
@pass_cli
def opps_win(cli: CliContext, opportunity_id: int, reason: str) -> None:
    """Close an opportunity as won."""
    with _write(cli) as tx:
        opportunities.close(tx, opportunity_id, won=True, reason=reason)
    click.echo(f"Opportunity {opportunity_id} won.")


@opps_group.command("lose")
@click.argument("opportunity_id", type=int)
@click.option("--reason", required=True, help="One of the configured lost reasons.")
@pass_cli
def opps_lose(cli: CliContext, opportunity_id: int, reason: str) -> None:
    """Close an opportunity as lost."""
    with _write(cli) as tx:
        opportunities.close(tx, opportunity_id, won=False, reason=reason)
    click.echo(f"Opportunity {opportunity_id} lost.")


# -- tasks --------------------------------------------------------------------------------


@sales.group("tasks")
def tasks_group() -> None:
    """Follow-ups: tasks, calls, meetings and e-mails."""


@tasks_group.command("add")
@click.option("--kind", type=click.Choice(tasks.KINDS), default="task", show_default=True)
@click.option("--title", required=True, help="What to do.")
@click.option("--due", required=True, help="Due date or date-time (ISO 8601; UTC if no "
              "offset).")
@click.option("--owner", help="Who does it.")
@click.option("--lead", "lead_id", type=int, help="Attach it to this lead ...")
@click.option("--opportunity", "opportunity_id", type=int, help="... or this opportunity ...")
@click.option("--customer", "customer_id", type=int, help="... or this customer.")
@json_option
@pass_cli
def tasks_add(cli: CliContext, kind: str, title: str, due: str, owner: str | None,
              lead_id: int | None, opportunity_id: int | None, customer_id: int | None,
              as_json: bool) -> None:
    """Schedule a follow-up on a lead, an opportunity or a customer."""
    with _write(cli) as tx:
        task = tasks.add(tx, kind=kind, title=title, due=due, owner=owner, lead=lead_id,
                         opportunity=opportunity_id, customer=customer_id)
        data = task.to_dict()
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Task {data['id']} added, due {data['due_at']}.")


@tasks_group.command("list")
@click.option("--owner", help="Only this person's follow-ups.")
@click.option("--overdue", is_flag=True, help="Only open follow-ups past due; each is "
              "announced once as the event sales.task_overdue.")
@click.option("--all", "show_all", is_flag=True, help="Include done follow-ups.")
@json_option
@pass_cli
def tasks_list(cli: CliContext, owner: str | None, overdue: bool, show_all: bool,
               as_json: bool) -> None:
    """List follow-ups by due date (open ones unless --all)."""
    with _write(cli) if overdue else _read(cli) as tx:
        if overdue:
            tasks.notify_overdue(tx)
        rows = [t.to_dict() for t in tasks.list_(
            tx, owner=owner, overdue=overdue, status=None if show_all else "open")]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, TASK_COLUMNS, "No overdue follow-ups." if overdue
                   else "No follow-ups.")


@tasks_group.command("done")
@click.argument("task_id", type=int)
@click.option("--outcome", help="What came of it (goes on the customer's timeline).")
@pass_cli
def tasks_done(cli: CliContext, task_id: int, outcome: str | None) -> None:
    """Mark a follow-up done; a call, meeting or e-mail is logged as an interaction."""
    with _write(cli) as tx:
        task = tasks.complete(tx, task_id, outcome)
        logged = task.interaction_id
    suffix = f" (interaction {logged})" if logged else ""
    click.echo(f"Task {task_id} done{suffix}.")


# -- reports ------------------------------------------------------------------------------


@sales.group("report")
def report_group() -> None:
    """Reports as tables, --json or --csv."""


def _output_options(function: Any) -> Any:
    function = click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")(function)
    return json_option(function)


def _emit(report: reports.Report, as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    if as_json:
        echo_json(report.to_dict())
    elif as_csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(report.columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(report.rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        echo_table(report.rows, report.columns, f"Nothing to report ({report.title}).")


_PERIOD = click.option("--period", type=click.Choice(reports.PERIODS), default="month",
                       show_default=True)
_FROM = click.option("--from", "start", help="First day, YYYY-MM-DD.")
_TO = click.option("--to", "end", help="Last day, YYYY-MM-DD.")


@report_group.command("pipeline")
@click.option("--owner", help="Only this salesperson's deals.")
@_output_options
@pass_cli
def report_pipeline(cli: CliContext, owner: str | None, as_json: bool, as_csv: bool) -> None:
    """Open opportunities by stage and owner."""
    with _read(cli) as tx:
        report = reports.pipeline(tx, owner=owner)
    _emit(report, as_json, as_csv)


@report_group.command("forecast")
@_PERIOD
@_FROM
@_TO
@click.option("--owner", help="Only this salesperson's deals.")
@_output_options
@pass_cli
def report_forecast(cli: CliContext, period: str, start: str | None, end: str | None,
                    owner: str | None, as_json: bool, as_csv: bool) -> None:
    """Weighted forecast per month or quarter and category."""
    with _read(cli) as tx:
        report = reports.forecast(tx, period=period, start=start, end=end, owner=owner)
    _emit(report, as_json, as_csv)


@report_group.command("win-rate")
@_FROM
@_TO
@_output_options
@pass_cli
def report_win_rate(cli: CliContext, start: str | None, end: str | None, as_json: bool,
                    as_csv: bool) -> None:
    """Win rate and average sales cycle, per owner and in total."""
    with _read(cli) as tx:
        report = reports.win_rate(tx, start=start, end=end)
    _emit(report, as_json, as_csv)


@report_group.command("by-domain")
@_PERIOD
@_FROM
@_TO
@_output_options
@pass_cli
def report_by_domain(cli: CliContext, period: str, start: str | None, end: str | None,
                     as_json: bool, as_csv: bool) -> None:
    """Won sales per domain (products, services, advertising, ...) and period."""
    with _read(cli) as tx:
        report = reports.by_domain(tx, period=period, start=start, end=end)
    _emit(report, as_json, as_csv)
