"""``crmkit campaigns``: segments, campaigns, launches, responses, consent and reports."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import click
from crmkit.cli.context import CliContext, default_actor, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option
from sqlalchemy import select

from crmkit_campaigns import campaigns, consent, launch, report, responses, segments
from crmkit_campaigns.models import Member
from crmkit_campaigns.settings import Settings

CAMPAIGN_COLUMNS = ["id", "code", "name", "channel", "state", "budget", "cost", "launches"]


def _criteria(value: str) -> Any:
    """``--criteria``: JSON, or ``@path`` to a JSON file."""
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {value[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None


@click.group("campaigns")
def campaigns_group() -> None:
    """Marketing campaigns: segments, offers, launches, responses and ROI."""


# -- segments ----------------------------------------------------------------------------


@campaigns_group.group("segments")
def segments_group() -> None:
    """Segments: named criteria over customers (preview, freeze into a static list)."""


@segments_group.command("add")
@click.argument("name")
@click.option("--criteria", "criteria", required=True,
              help="The criteria document as JSON, or @FILE with it.")
@click.option("--description", help="What the segment is for.")
@json_option
@pass_cli
def segments_add(cli: CliContext, name: str, criteria: str, description: str | None,
                 as_json: bool) -> None:
    """Add a segment NAME chosen by criteria (see docs/workflows.md, Criteria)."""
    document = _criteria(criteria)
    with cli.crm.transaction(actor=default_actor()) as tx:
        data = segments.to_dict(segments.add(tx, name, document, description))
    echo_json(data) if as_json else click.echo(f"Added segment {data['name']!r} "
                                               f"(id {data['id']}).")


@segments_group.command("list")
@json_option
@pass_cli
def segments_list(cli: CliContext, as_json: bool) -> None:
    """List the segments."""
    with cli.crm.transaction(readonly=True) as tx:
        rows = [segments.to_dict(s) for s in segments.list_all(tx.session)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["id", "name", "frozen_at", "criteria"], "No segments yet.")


@segments_group.command("preview")
@click.argument("segment")
@click.option("--sample", type=click.IntRange(0, 1000), default=None,
              help="How many customers to show (default: the plugin's sample_size, 10).")
@json_option
@pass_cli
def segments_preview(cli: CliContext, segment: str, sample: int | None, as_json: bool) -> None:
    """Count the customers SEGMENT holds now and show a sample of them."""
    size = Settings.of(cli.crm).sample_size if sample is None else sample
    with cli.crm.transaction(readonly=True) as tx:
        data = segments.preview(cli.crm, tx.session, segments.get(tx.session, segment), size)
    if as_json:
        echo_json(data)
        return
    click.echo(f"Segment {data['segment']!r}: {data['count']} customers"
               f"{' (frozen)' if data['frozen'] else ''}")
    if data["sample"]:
        echo_table(data["sample"], ["id", "kind", "name", "email"], "")


@segments_group.command("freeze")
@click.argument("segment")
@json_option
@pass_cli
def segments_freeze(cli: CliContext, segment: str, as_json: bool) -> None:
    """Freeze SEGMENT into a static list of the customers it holds now."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        found = segments.get(tx.session, segment)
        count = segments.freeze(tx, found)
        name = found.name
    if as_json:
        echo_json({"segment": name, "members": count})
    else:
        click.echo(f"Froze segment {name!r}: {count} customers.")


# -- campaigns ---------------------------------------------------------------------------


@campaigns_group.command("add")
@click.argument("code")
@click.option("--name", required=True, help="The campaign's name.")
@click.option("--channel", required=True, help="The channel it sends through (email, sms...).")
@click.option("--segment", "segment_names", multiple=True, required=True,
              help="A segment it targets (repeatable).")
@click.option("--currency", help="ISO 4217 code of budget, cost and revenue (default: EUR "
              "or the plugin's currency).")
@click.option("--budget", help="The budget, e.g. 5000.00.")
@click.option("--cost", help="The actual cost so far.")
@click.option("--starts", "starts_at", help="Start: 2026-12-01 or an ISO time with offset.")
@click.option("--ends", "ends_at", help="End: 2026-12-31 or an ISO time with offset.")
@click.option("--offer-kind", type=click.Choice(campaigns.OFFER_KINDS),
              help="price (a special price), discount (a percentage) or terms.")
@click.option("--offer-value", help="The special price or the discount percentage.")
@click.option("--offer-terms", help="The offer's terms, as text.")
@click.option("--offer-code", help="The code customers quote to take the offer.")
@click.option("--offer-starts", help="When the offer starts.")
@click.option("--offer-ends", help="When the offer ends.")
@click.option("--control-percent", type=int, default=0, show_default=True,
              help="Share of the targeted customers held out as a control group (0-90).")
@click.option("--variant", "variants", multiple=True,
              help="An A/B variant name (repeatable; default: one variant, A).")
@json_option
@pass_cli
def campaigns_add(cli: CliContext, code: str, name: str, channel: str,
                  segment_names: tuple[str, ...], currency: str | None, budget: str | None,
                  cost: str | None, starts_at: str | None, ends_at: str | None,
                  offer_kind: str | None, offer_value: str | None, offer_terms: str | None,
                  offer_code: str | None, offer_starts: str | None, offer_ends: str | None,
                  control_percent: int, variants: tuple[str, ...], as_json: bool) -> None:
    """Add a campaign CODE in draft (responses quote CODE or the offer code)."""
    offer_parts = {"kind": offer_kind, "value": offer_value, "terms": offer_terms,
                   "code": offer_code, "starts_at": offer_starts, "ends_at": offer_ends}
    offer = {k: v for k, v in offer_parts.items() if v is not None} or None
    if offer is not None and "kind" not in offer:
        offer["kind"] = "terms"
    with cli.crm.transaction(actor=default_actor()) as tx:
        campaign = campaigns.add(
            tx, code=code, name=name, channel=channel, segments=list(segment_names),
            currency=currency, budget=budget, cost=cost, starts_at=starts_at, ends_at=ends_at,
            offer=offer, control_percent=control_percent, variants=list(variants) or ["A"])
        data = campaigns.to_dict(campaign, list(segment_names))
    echo_json(data) if as_json else click.echo(f"Added campaign {code!r} (id {data['id']}), "
                                               "draft.")


@campaigns_group.command("list")
@click.option("--state", type=click.Choice(campaigns.WORKFLOW["states"]),
              help="Only campaigns in this state.")
@json_option
@pass_cli
def campaigns_list(cli: CliContext, state: str | None, as_json: bool) -> None:
    """List the campaigns, newest first."""
    with cli.crm.transaction(readonly=True) as tx:
        rows = [campaigns.to_dict(c) for c in campaigns.list_all(tx.session, state)]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, CAMPAIGN_COLUMNS, "No campaigns yet.")


@campaigns_group.command("show")
@click.argument("campaign")
@json_option
@pass_cli
def campaigns_show(cli: CliContext, campaign: str, as_json: bool) -> None:
    """Show CAMPAIGN (its code or id) with its segments and offer."""
    with cli.crm.transaction(readonly=True) as tx:
        found = campaigns.get(tx.session, campaign)
        names = [s.name for s in campaigns.segments_of(tx.session, found)]
        data = campaigns.to_dict(found, names)
    echo_json(data) if as_json else echo_record(data)


def _move(cli: CliContext, campaign: str, transition: str, past: str) -> None:
    with cli.crm.transaction(actor=default_actor()) as tx:
        found = campaigns.get(tx.session, campaign)
        campaigns.move(tx, found, transition)
        code = found.code
    click.echo(f"Campaign {code!r} {past}.")


@campaigns_group.command("schedule")
@click.argument("campaign")
@pass_cli
def campaigns_schedule(cli: CliContext, campaign: str) -> None:
    """Mark a draft CAMPAIGN as scheduled."""
    _move(cli, campaign, "schedule", "scheduled")


@campaigns_group.command("launch")
@json_option
@click.argument("campaign")
@pass_cli
def campaigns_launch(cli: CliContext, campaign: str, as_json: bool) -> None:
    """Launch CAMPAIGN: add the members of its segments (minus opted-out, suppressed and
    existing members; a control group held out) and queue one send per new member.

    Running it again adds only customers who joined the segments since; nobody is sent
    twice. Sends are delivered from the outbox by `crmkit worker` or `crmkit events
    dispatch`.
    """
    with cli.crm.transaction(actor=default_actor()) as tx:
        result = dict(launch.launch(tx, campaigns.get(tx.session, campaign)))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Launch {result['launch']} of {result['campaign']!r}: {result['added']} "
                   f"new members, {result['sent']} sends queued, {result['control']} held "
                   "out as control.")


@campaigns_group.command("complete")
@click.argument("campaign")
@click.option("--cost", help="The final actual cost.")
@pass_cli
def campaigns_complete(cli: CliContext, campaign: str, cost: str | None) -> None:
    """Complete a running CAMPAIGN (optionally recording its final cost)."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        found = campaigns.get(tx.session, campaign)
        if cost is not None:
            campaigns.set_cost(tx, found, cost)
        campaigns.move(tx, found, "complete")
        code = found.code
    click.echo(f"Campaign {code!r} completed.")


@campaigns_group.command("cancel")
@click.argument("campaign")
@pass_cli
def campaigns_cancel(cli: CliContext, campaign: str) -> None:
    """Cancel CAMPAIGN (nothing more is sent; responses are still recorded)."""
    _move(cli, campaign, "cancel", "cancelled")


@campaigns_group.command("cost")
@click.argument("campaign")
@click.argument("amount")
@pass_cli
def campaigns_cost(cli: CliContext, campaign: str, amount: str) -> None:
    """Record the actual cost of CAMPAIGN so far (in its currency)."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        found = campaigns.get(tx.session, campaign)
        campaigns.set_cost(tx, found, amount)
        code, currency = found.code, found.currency
    click.echo(f"Campaign {code!r} cost: {amount} {currency}.")


@campaigns_group.command("members")
@click.argument("campaign")
@click.option("--status", type=click.Choice(["targeted", "control", "sent",
                                             *responses.RESPONSE_STATUSES]))
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@json_option
@pass_cli
def campaigns_members(cli: CliContext, campaign: str, status: str | None, limit: int,
                      as_json: bool) -> None:
    """List CAMPAIGN's members with their status."""
    with cli.crm.transaction(readonly=True) as tx:
        found = campaigns.get(tx.session, campaign)
        query = select(Member).where(Member.campaign_id == found.id)
        if status:
            query = query.where(Member.status == status)
        rows = [responses.to_dict(m) for m in
                tx.session.scalars(query.order_by(Member.customer_id).limit(limit))]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["customer_id", "variant", "status", "sent_at", "revenue"],
                   "No members.")


# -- responses, consent ------------------------------------------------------------------


@campaigns_group.command("respond")
@click.argument("campaign")
@click.argument("customer_id", type=int)
@click.argument("status", type=click.Choice(responses.RESPONSE_STATUSES))
@click.option("--at", "at", help="When (ISO time with offset; default: now).")
@click.option("--revenue", help="Revenue a conversion earned, in the campaign's currency.")
@json_option
@pass_cli
def campaigns_respond(cli: CliContext, campaign: str, customer_id: int, status: str,
                      at: str | None, revenue: str | None, as_json: bool) -> None:
    """Record that member CUSTOMER_ID of CAMPAIGN opened, responded, converted, opted out
    or bounced."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        found = campaigns.get(tx.session, campaign)
        data = responses.to_dict(responses.record(tx, found, customer_id, status, at=at,
                                                  revenue=revenue))
    echo_json(data) if as_json else click.echo(
        f"Recorded {status} for customer {customer_id} in {campaign!r} (status now "
        f"{data['status']}).")


@campaigns_group.command("import-responses")
@click.argument("campaign")
@click.argument("file")
@click.option("--on-error", type=click.Choice(["stop", "skip"]), default="stop",
              show_default=True, help="stop: import nothing if a line is bad; skip: import "
              "the good lines and write the bad ones to --rejects.")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False, writable=True),
              help="With --on-error=skip: where to write the rejected lines with their "
              "errors (CSV; default: FILE.rejects.csv).")
@pass_cli
def campaigns_import_responses(cli: CliContext, campaign: str, file: str, on_error: str,
                               rejects_path: str | None) -> None:
    """Import responses to CAMPAIGN from a CSV FILE (- for stdin) with the columns
    customer_id, status and optionally at, revenue, ref. By default all or nothing: a bad
    line stops the import, naming the line and the field. Re-importing a file does not
    count a conversion twice when its lines carry a ref."""
    text = _read(file)
    rejects: list[tuple[int, dict[str, str], list[Any]]] | None = \
        [] if on_error == "skip" else None
    with cli.crm.transaction(actor=default_actor()) as tx:
        count = responses.import_csv(tx, campaigns.get(tx.session, campaign), text, rejects)
    click.echo(f"Imported {count} responses.")
    if rejects:
        target = Path(rejects_path or f"{'responses' if file == '-' else file}.rejects.csv")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["line", *responses.COLUMNS, "error"])
        for line, row, issues in rejects:
            writer.writerow([line, *(row.get(c) or "" for c in responses.COLUMNS),
                             "; ".join(str(i) for i in issues)])
        target.write_text(out.getvalue(), encoding="utf-8")
        click.echo(f"Rejected {len(rejects)} lines; see {target}.", err=True)


@campaigns_group.command("optout")
@click.argument("customer_id", type=int)
@click.option("--channel", default="*", show_default=True,
              help="The channel (* for every channel).")
@click.option("--in", "opt_in", is_flag=True, help="Record an opt-in instead.")
@pass_cli
def campaigns_optout(cli: CliContext, customer_id: int, channel: str, opt_in: bool) -> None:
    """Record that CUSTOMER_ID opted out of (or, with --in, into) a channel."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        consent.set_consent(tx, customer_id, channel, opt_in, source="cli")
    click.echo(f"Customer {customer_id} opted {'in to' if opt_in else 'out of'} {channel}.")


@campaigns_group.command("suppress")
@click.argument("file")
@click.option("--list", "list_name", default="default", show_default=True,
              help="The suppression list to add to.")
@pass_cli
def campaigns_suppress(cli: CliContext, file: str, list_name: str) -> None:
    """Import a suppression list from a CSV FILE with a customer_id or email column."""
    text = _read(file)
    with cli.crm.transaction(actor=default_actor()) as tx:
        added = consent.import_suppressions(tx, list_name, text)
    click.echo(f"Added {added} customers to suppression list {list_name!r}.")


# -- reports -----------------------------------------------------------------------------


@campaigns_group.command("report")
@click.argument("campaign")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@json_option
@pass_cli
def campaigns_report(cli: CliContext, campaign: str, as_csv: bool, as_json: bool) -> None:
    """Analyse CAMPAIGN: members, sends, response and conversion rates, revenue, cost per
    response and ROI, per variant and against the control group (lift)."""
    with cli.crm.transaction(readonly=True) as tx:
        analysis = report.analyse(tx.session, campaigns.get(tx.session, campaign))
    rows = report.rows_of(analysis)
    if as_json:
        echo_json(analysis)
    elif as_csv:
        click.echo(report.to_csv(rows), nl=False)
    else:
        click.echo(f"Campaign {analysis['campaign']!r} ({analysis['state']}), money in "
                   f"{analysis['currency']}, budget {analysis['budget'] or '-'}")
        echo_table(rows, ["variant", "members", "sent", "responded", "converted",
                          "response_rate", "conversion_rate", "revenue", "cost",
                          "cost_per_response", "roi", "lift"], "No members yet.")
