"""``crmkit surveys``: define, publish, send, remind, record and report."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import click
from crmkit import Issue, ValidationError
from crmkit.cli.context import CliContext, default_actor, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option
from crmkit.criteria import parse_duration

from crmkit_surveys import catalog, invitations, privacy, reports
from crmkit_surveys.definition import load_document
from crmkit_surveys.importer import import_records, read_records
from crmkit_surveys.responses import respond
from crmkit_surveys.settings import Settings


class _DryRun(Exception):
    """Raised inside a transaction to roll it back after showing what it would do."""


class Duration(click.ParamType[Any, Any]):
    """An ISO 8601 duration option: P14D, P2W, PT48H, P1DT12H."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.group()
def surveys() -> None:
    """Feedback surveys: NPS, CSAT and CES from customers and employees."""


def _actor() -> str:
    return default_actor()


@surveys.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_cli
def surveys_add(cli: CliContext, file: str, as_json: bool) -> None:
    """Add a survey document (.json or .toml) as a draft version.

    A draft is replaced by a newer document; once published, a changed document becomes
    the next version.
    """
    document = load_document(file)
    with cli.crm.transaction(actor=_actor()) as tx:
        data = catalog.summary(catalog.add(tx, document, context=file))
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Survey {data['key']!r} version {data['version']}: {data['status']} "
                   f"({data['questions']} questions)")


@surveys.command("list")
@json_option
@pass_cli
def surveys_list(cli: CliContext, as_json: bool) -> None:
    """List surveys and their versions."""
    with cli.crm.transaction(actor=_actor(), readonly=True) as tx:
        rows = catalog.list_surveys(tx.session)
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["key", "version", "status", "audience", "anonymous", "questions",
                          "invitations", "responses", "title"], "No surveys yet.")


@surveys.command("show")
@click.argument("key")
@click.option("--version", "version", type=click.IntRange(1), help="A version (default: "
              "the published one, else the newest).")
@json_option
@pass_cli
def surveys_show(cli: CliContext, key: str, version: int | None, as_json: bool) -> None:
    """Show a survey version and its questions."""
    with cli.crm.transaction(actor=_actor(), readonly=True) as tx:
        survey = catalog.get(tx.session, key, version)
        data = {**catalog.summary(survey), "definition": survey.definition}
        questions = [{"page": q.page + 1, "id": q.id, "type": q.type,
                      "required": q.required, "show_if": q.show_if, "text": q.text}
                     for q in catalog.definition_of(survey).questions]
    if as_json:
        echo_json(data)
        return
    echo_record({k: v for k, v in data.items() if k != "definition"})
    click.echo()
    echo_table(questions, ["page", "id", "type", "required", "show_if", "text"], "")


@surveys.command("publish")
@click.argument("key")
@json_option
@pass_cli
def surveys_publish(cli: CliContext, key: str, as_json: bool) -> None:
    """Publish the draft of a survey; it can no longer change."""
    with cli.crm.transaction(actor=_actor()) as tx:
        data = catalog.summary(catalog.publish(tx, key))
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Published survey {key!r} version {data['version']}")


@surveys.command("send")
@click.argument("key")
@click.option("--segment", help="A segment of [plugin.surveys.segments].")
@click.option("--criteria", "criteria", help="A criteria document (JSON) choosing customers.")
@click.option("--customer", "customer_ids", type=int, multiple=True,
              help="A customer id (repeatable).")
@click.option("--employees", type=click.Path(dir_okay=False),
              help="Employees (CSV or JSON with name, email, department, role).")
@click.option("--expires-after", type=Duration(), help="Validity (default: the config's).")
@click.option("--min-interval", type=Duration(),
              help="Skip customers invited to any survey within this period.")
@click.option("--dry-run", is_flag=True, help="Show who would be invited; change nothing.")
@json_option
@pass_cli
def surveys_send(cli: CliContext, key: str, segment: str | None, criteria: str | None,
                 customer_ids: tuple[int, ...], employees: str | None, expires_after: Any,
                 min_interval: Any, dry_run: bool, as_json: bool) -> None:
    """Invite an audience to the published version of a survey.

    Each invitation gets its own unguessable link, goes to the outbox as a
    surveys.invitation_sent event and, for customers, onto the timeline.
    """
    chosen = [o for o, v in (("--segment", segment), ("--criteria", criteria),
                             ("--customer", customer_ids), ("--employees", employees)) if v]
    if len(chosen) != 1:
        raise click.UsageError("choose the audience with exactly one of --segment, "
                               "--criteria, --customer, --employees")
    settings = Settings.of(cli.crm)
    rows: list[dict[str, Any]] = []
    try:
        with cli.crm.transaction(actor=_actor()) as tx:
            survey = catalog.get(tx.session, key, published=True)
            if segment:
                recipients = invitations.by_segment(tx, segment, settings)
            elif criteria:
                recipients = invitations.by_criteria(tx, _json(criteria, "--criteria"))
            elif customer_ids:
                recipients = [invitations.Recipient(customer_id=tx.customers.get(i).id,
                                                    segment="customers")
                              for i in dict.fromkeys(customer_ids)]
            else:
                assert employees is not None
                recipients = invitations.load_employees(employees)
            sent = invitations.send(tx, survey, recipients, settings,
                                    expires_after=expires_after, min_interval=min_interval)
            rows = [_sent_row(s) for s in sent]
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    _echo_sent(rows, as_json, "Would invite" if dry_run else "Invited", key)


@surveys.command("remind")
@click.argument("key")
@click.option("--dry-run", is_flag=True, help="Show who would be reminded; change nothing.")
@json_option
@pass_cli
def surveys_remind(cli: CliContext, key: str, dry_run: bool, as_json: bool) -> None:
    """Remind those invited who have not answered (each gets a fresh link)."""
    settings = Settings.of(cli.crm)
    rows: list[dict[str, Any]] = []
    try:
        with cli.crm.transaction(actor=_actor()) as tx:
            survey = catalog.get(tx.session, key, published=True)
            rows = [_sent_row(s) for s in invitations.remind(tx, survey, settings)]
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    _echo_sent(rows, as_json, "Would remind" if dry_run else "Reminded", key)


def _sent_row(sent: invitations.Sent) -> dict[str, Any]:
    i = sent.invitation
    return {"invitation_id": i.id, "customer_id": i.customer_id, "email": i.email,
            "department": i.department, "expires_at": i.expires_at.isoformat(),
            "reminders": i.reminders, "token": sent.token, "link": sent.link}


def _echo_sent(rows: list[dict[str, Any]], as_json: bool, verb: str, key: str) -> None:
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{verb} {len(rows)} recipient(s) to survey {key!r}")
    if rows:
        echo_table(rows, ["invitation_id", "customer_id", "email", "expires_at", "link"], "")


@surveys.command("respond")
@click.argument("token")
@click.option("--answers", help="The answers as JSON: {\"question_id\": answer, ...}.")
@click.option("--file", "file", type=click.Path(dir_okay=False),
              help="A JSON file with the answers.")
@click.option("--partial", is_flag=True, help="Keep an unfinished response as partial.")
@json_option
@pass_cli
def surveys_respond(cli: CliContext, token: str, answers: str | None, file: str | None,
                    partial: bool, as_json: bool) -> None:
    """Record the answers of the invitation TOKEN opens."""
    if (answers is None) == (file is None):
        raise click.UsageError("give the answers with exactly one of --answers, --file")
    if file is not None:
        try:
            with open(file, encoding="utf-8") as handle:
                answers = handle.read()
        except OSError as exc:
            raise click.FileError(file, exc.strerror) from None
    assert answers is not None
    document = _json(answers, "--answers" if file is None else file)
    with cli.crm.transaction(actor=_actor()) as tx:
        response = respond(tx, token, document, partial=partial)
        data = {"response_id": response.id, "status": response.status,
                "customer_id": response.customer_id}
    if as_json:
        echo_json(data)
    else:
        click.echo(f"Recorded response {data['response_id']} ({data['status']})")


@surveys.command("import-responses")
@click.argument("key")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--version", "version", type=click.IntRange(1),
              help="The version the answers belong to (default: the published one).")
@click.option("--on-error", type=click.Choice(["abort", "skip"]), default="abort",
              show_default=True, help="abort: import nothing if a record is bad; skip: "
              "import the good ones and write the bad ones to --rejects.")
@click.option("--rejects", type=click.Path(dir_okay=False),
              help="With --on-error=skip: a CSV file for the rejected records.")
@json_option
@pass_cli
def surveys_import(cli: CliContext, key: str, file: str, version: int | None, on_error: str,
                   rejects: str | None, as_json: bool) -> None:
    """Import responses from another tool's CSV or JSON export."""
    records, naming = read_records(file)
    with cli.crm.transaction(actor=_actor()) as tx:
        survey = catalog.get(tx.session, key, version, published=True)
        result = import_records(tx, survey, records, naming=naming,
                                skip_errors=on_error == "skip")
    if result.rejected and rejects:
        columns = list(dict.fromkeys(k for r in result.rejected for k in r))
        with open(rejects, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows({k: _cell(v) for k, v in r.items()} for r in result.rejected)
    data = {"imported": result.imported, "skipped": result.skipped,
            "rejected": len(result.rejected)}
    if as_json:
        echo_json({**data, "rejects": result.rejected})
    else:
        click.echo(f"Imported {result.imported}, skipped {result.skipped} already imported, "
                   f"rejected {len(result.rejected)}")
        for r in result.rejected:
            click.echo(f"  rejected: {r['errors']}", err=True)


@surveys.command("report")
@click.argument("key")
@click.option("--version", "version", type=click.IntRange(1),
              help="A version (default: the published one, else the newest).")
@click.option("--by", type=click.Choice(reports.GROUPINGS), help="Also report per group.")
@click.option("--include-partial", is_flag=True, help="Count partial responses' answers.")
@click.option("--csv", "as_csv", is_flag=True, help="Print one CSV row per group and question.")
@json_option
@pass_cli
def surveys_report(cli: CliContext, key: str, version: int | None, by: str | None,
                   include_partial: bool, as_csv: bool, as_json: bool) -> None:
    """Scores (NPS, CSAT, CES), distributions, response rate and free-text answers."""
    if as_csv and as_json:
        raise click.UsageError("choose one of --json, --csv")
    settings = Settings.of(cli.crm)
    with cli.crm.transaction(actor=_actor(), readonly=True) as tx:
        survey = catalog.get(tx.session, key, version)
        report = reports.build_report(tx.session, survey, by=by,
                                      min_group_size=settings.min_group_size,
                                      include_partial=include_partial)
    if as_json:
        echo_json(report)
    elif as_csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, reports.COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(reports.flat_rows(report))
        click.echo(buffer.getvalue(), nl=False)
    else:
        _echo_report(report)


def _echo_report(report: dict[str, Any]) -> None:
    click.echo(f"Survey {report['survey']!r} version {report['version']} "
               f"({report['status']}): {report['title']}")
    if report["suppressed"]:
        click.echo(f"Fewer than {report['min_group_size']} responses: results suppressed "
                   "(anonymous survey).")
        return
    click.echo(f"Invitations {report['invitations']}, responses {report['responses']} "
               f"(+{report['partial']} partial), response rate "
               f"{_pct(report['response_rate'])}")
    click.echo()
    columns = [c for c in reports.COLUMNS if c != "group" or "groups" in report]
    echo_table(reports.flat_rows(report), columns, "No questions with answers.")
    if "groups" in report:
        click.echo()
        echo_table([{"group": g["group"], "invitations": g.get("invitations"),
                     "responses": g.get("responses"), "partial": g.get("partial"),
                     "response_rate": _pct(g.get("response_rate")),
                     "suppressed": "yes" if g["suppressed"] else ""}
                    for g in report["groups"]],
                   ["group", "invitations", "responses", "partial", "response_rate",
                    "suppressed"], "")
    if report["free_text"]:
        click.echo()
        click.echo("Free-text answers:")
        for item in report["free_text"]:
            click.echo(f"  [{item['question']}] {item['text']}")


@surveys.command("forget-employee")
@click.argument("email")
@pass_cli
def surveys_forget_employee(cli: CliContext, email: str) -> None:
    """Erase an employee's invitations and unlink their responses (free texts removed)."""
    with cli.crm.transaction(actor=_actor()) as tx:
        removed = privacy.forget_employee(tx, email)
    click.echo(f"Removed {removed} invitation(s) of {email.strip().lower()}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value}%"


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError([Issue(where, f"not valid JSON: {exc}")]) from None
