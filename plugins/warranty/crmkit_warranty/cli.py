"""``crmkit warranty``: products, units, claims and reports, with ``--json`` and ``--csv``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click
from crmkit.cli.context import CliContext, default_actor, pass_cli
from crmkit.cli.output import echo_json, echo_record, echo_table, json_option
from crmkit.db import utcnow

from crmkit_warranty import analytics, catalog, claims, units
from crmkit_warranty.files import read_records, to_csv
from crmkit_warranty.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

PRODUCT_COLUMNS = ["sku", "name", "product_line", "warranty_months", "extended_months"]
CLAIM_COLUMNS = ["id", "state", "customer_id", "sku", "serial", "defect_code", "entitlement",
                 "opened_at", "remedy"]


def csv_option(function: F) -> F:
    """``--csv``: print the rows as CSV (with a header) for spreadsheets."""
    return click.option("--csv", "as_csv", is_flag=True, help="Print CSV for spreadsheets.")(
        function)


def _rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], as_json: bool,
          as_csv: bool, empty: str) -> None:
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    if as_json:
        echo_json(list(rows))
    elif as_csv:
        click.echo(to_csv(rows, columns), nl=False)
    else:
        echo_table(rows, columns, empty)


def _record(data: Mapping[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(data)
    else:
        echo_record(data)


@click.group()
def warranty() -> None:
    """Warranty: products, registered units, claims and defect reports."""


# -- products -------------------------------------------------------------------------------

@warranty.group()
def products() -> None:
    """The product catalogue and its warranty terms."""


@products.command("add")
@click.argument("sku")
@click.option("--name", required=True, help="Product name.")
@click.option("--line", "product_line", required=True, help="Product line.")
@click.option("--warranty-months", type=int, required=True, help="Standard warranty.")
@click.option("--extended-months", type=int, help="Months an extended warranty adds.")
@json_option
@pass_cli
def products_add(cli: CliContext, sku: str, name: str, product_line: str,
                 warranty_months: int, extended_months: int | None, as_json: bool) -> None:
    """Add a product, or update the terms of an existing SKU."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        product = catalog.add_product(tx, sku=sku, name=name, product_line=product_line,
                                      warranty_months=warranty_months,
                                      extended_months=extended_months)
        data = product.to_dict()
    _record(data, as_json)


@products.command("list")
@json_option
@csv_option
@pass_cli
def products_list(cli: CliContext, as_json: bool, as_csv: bool) -> None:
    """List the catalogue."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        rows = [p.to_dict() for p in catalog.list_products(tx.session)]
    _rows(rows, PRODUCT_COLUMNS, as_json, as_csv, "No products yet.")


@products.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@pass_cli
def products_import(cli: CliContext, file: str) -> None:
    """Import products from CSV (header: sku,name,product_line,warranty_months,
    extended_months) or a JSON array; all or nothing, re-running changes nothing."""
    records = read_records(file)
    with cli.crm.transaction(actor=default_actor()) as tx:
        counts = catalog.import_products(tx, records)
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))


# -- units ----------------------------------------------------------------------------------

@warranty.group("units")
def units_group() -> None:
    """Registered units: serial numbers, owners, warranty periods."""


@units_group.command("register")
@click.argument("sku")
@click.argument("serial")
@click.option("--customer", "customer_id", type=int, required=True, help="The owner.")
@click.option("--purchased", "purchase_date", type=click.DateTime(["%Y-%m-%d"]),
              required=True, help="Purchase date, YYYY-MM-DD.")
@click.option("--batch", help="Batch or lot.")
@click.option("--extended", is_flag=True, help="The customer bought the extended warranty.")
@click.option("--purchase-interaction", "interaction_id", type=int,
              help="Link an existing purchase interaction instead of logging one.")
@click.option("--channel", default="system", show_default=True,
              help="Channel of the purchase interaction logged.")
@json_option
@pass_cli
def units_register(cli: CliContext, sku: str, serial: str, customer_id: int,
                   purchase_date: dt.datetime, batch: str | None, extended: bool,
                   interaction_id: int | None, channel: str, as_json: bool) -> None:
    """Register unit SERIAL of product SKU to a customer."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        unit = units.register_unit(tx, sku=sku, serial=serial, customer_id=customer_id,
                                   purchase_date=purchase_date.date(), batch=batch,
                                   extended=extended, purchase_interaction_id=interaction_id,
                                   channel=channel)
        data = units.unit_dict(tx.session, unit)
    _record(data, as_json)


@units_group.command("show")
@click.argument("sku")
@click.argument("serial")
@json_option
@pass_cli
def units_show(cli: CliContext, sku: str, serial: str, as_json: bool) -> None:
    """Show a unit, its warranty, entitlement today and owners."""
    from crmkit_warranty.terms import entitlement

    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        unit = units.get_unit(tx.session, sku, serial)
        data = units.unit_dict(tx.session, unit, history=True)
        data["entitlement_today"] = entitlement(utcnow().date(), unit.warranty_end,
                                                unit.extended_end)
    _record(data, as_json)


@units_group.command("transfer")
@click.argument("sku")
@click.argument("serial")
@click.option("--to", "to_customer", type=int, required=True, help="The new owner.")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="From (today).")
@json_option
@pass_cli
def units_transfer(cli: CliContext, sku: str, serial: str, to_customer: int,
                   on: dt.datetime | None, as_json: bool) -> None:
    """Give a unit a new owner; the ownership history keeps the previous ones."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        unit = units.transfer_unit(tx, units.get_unit(tx.session, sku, serial), to_customer,
                                   on.date() if on else None)
        data = units.unit_dict(tx.session, unit, history=True)
    _record(data, as_json)


@units_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@pass_cli
def units_import(cli: CliContext, file: str) -> None:
    """Register units from CSV (header: sku,serial,customer_id,purchase_date,batch,
    extended) or a JSON array; all or nothing, re-running changes nothing."""
    records = read_records(file)
    with cli.crm.transaction(actor=default_actor()) as tx:
        counts = units.import_units(tx, records)
    click.echo(", ".join(f"{v} {k}" for k, v in counts.items()))


# -- claims ---------------------------------------------------------------------------------

@warranty.group("claims")
def claims_group() -> None:
    """Warranty claims and their lifecycle (workflow warranty_claim)."""


@claims_group.command("open")
@click.argument("sku")
@click.option("--serial", help="The unit's serial (leave out when unknown).")
@click.option("--customer", "customer_id", type=int,
              help="The customer (required when the serial is unknown).")
@click.option("--defect", "defect_code", required=True, help="A code of the defect catalogue.")
@click.option("--description", required=True, help="What the customer reports.")
@click.option("--channel", required=True, help="Channel the claim came through.")
@json_option
@pass_cli
def claims_open(cli: CliContext, sku: str, serial: str | None, customer_id: int | None,
                defect_code: str, description: str, channel: str, as_json: bool) -> None:
    """Open a claim; shows the entitlement found (in_warranty, extended, expired)."""
    with cli.crm.transaction(actor=default_actor()) as tx:
        claim = claims.open_claim(tx, sku=sku, serial=serial, customer_id=customer_id,
                                  defect_code=defect_code, description=description,
                                  channel=channel)
        data = claims.claim_dict(tx.session, claim)
    _record(data, as_json)


@claims_group.command("list")
@click.option("--state", help="Only claims in this state.")
@click.option("--customer", "customer_id", type=int, help="Only this customer's claims.")
@click.option("--sku", help="Only claims on this product.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@csv_option
@pass_cli
def claims_list(cli: CliContext, state: str | None, customer_id: int | None, sku: str | None,
                limit: int, as_json: bool, as_csv: bool) -> None:
    """List claims, newest first."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        rows = [claims.claim_dict(tx.session, c) for c in claims.list_claims(
            tx.session, state=state, customer_id=customer_id, sku=sku, limit=limit)]
    _rows(rows, CLAIM_COLUMNS, as_json, as_csv, "No claims.")


@claims_group.command("show")
@click.argument("claim_id", type=int)
@json_option
@pass_cli
def claims_show(cli: CliContext, claim_id: int, as_json: bool) -> None:
    """Show a claim and its history."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        claim = claims.get_claim(tx.session, claim_id)
        data = claims.claim_dict(tx.session, claim)
        steps = tx.workflows.history(claim.workflow_instance_id) \
            if claim.workflow_instance_id else []
        data["history"] = [{"transition": s.transition, "from": s.from_state,
                            "to": s.to_state, "actor": s.actor, "at": s.at.isoformat(),
                            "data": s.data} for s in steps]
        allowed = tx.crm.workflows.get("warranty_claim").available(claim.state)
        data["allowed_moves"] = [t.name for t in allowed if t.timer is None]
    if as_json:
        echo_json(data)
        return
    history = data.pop("history")
    echo_record(data)
    click.echo("")
    echo_table(history, ["at", "transition", "from", "to", "actor"], "No history.")


def _move(cli: CliContext, claim_id: int, transition: str, as_json: bool, *,
          note: str | None = None, reason: str | None = None) -> None:
    with cli.crm.transaction(actor=default_actor()) as tx:
        before = claims.get_claim(tx.session, claim_id).state
        claim = claims.move_claim(tx, claim_id, transition, note=note, reason=reason)
        data = claims.claim_dict(tx.session, claim)
    if as_json:
        echo_json(data)
    else:
        click.echo(f"claim {claim_id}: {transition} ({before} → {data['state']})")


@claims_group.command("move")
@click.argument("claim_id", type=int)
@click.argument("transition")
@click.option("--note", help="A note for the history and the timeline.")
@json_option
@pass_cli
def claims_move(cli: CliContext, claim_id: int, transition: str, note: str | None,
                as_json: bool) -> None:
    """Move a claim: triage, order_parts, repair, replace, refund, resolve, reopen, close."""
    _move(cli, claim_id, transition, as_json, note=note)


@claims_group.command("resolve")
@click.argument("claim_id", type=int)
@click.option("--note", help="What was done.")
@json_option
@pass_cli
def claims_resolve(cli: CliContext, claim_id: int, note: str | None, as_json: bool) -> None:
    """Mark the remedy (repair, replace or refund) done."""
    _move(cli, claim_id, "resolve", as_json, note=note)


@claims_group.command("reject")
@click.argument("claim_id", type=int)
@click.option("--reason", required=True, help="Why the claim is rejected (required).")
@json_option
@pass_cli
def claims_reject(cli: CliContext, claim_id: int, reason: str, as_json: bool) -> None:
    """Reject a claim, with a reason."""
    _move(cli, claim_id, "reject", as_json, reason=reason)


@claims_group.command("codes")
@json_option
@pass_cli
def claims_codes(cli: CliContext, as_json: bool) -> None:
    """List the defect catalogue."""
    codes = Settings.of(cli.crm).defect_codes
    rows = [{"code": k, "description": v} for k, v in sorted(codes.items())]
    _rows(rows, ["code", "description"], as_json, False, "No defect codes.")


# -- reports --------------------------------------------------------------------------------

@warranty.group()
def report() -> None:
    """Defect rates, SLA breaches and time to resolution, computed in SQL."""


@report.command("defects")
@click.option("--by", type=click.Choice(analytics.DEFECT_DIMENSIONS), default="product",
              show_default=True, help="Group by; 'code' lists the top defect codes.")
@json_option
@csv_option
@pass_cli
def report_defects(cli: CliContext, by: str, as_json: bool, as_csv: bool) -> None:
    """Defect rate (counted claims / units in service) per product, line, batch or month."""
    codes = Settings.of(cli.crm).defect_codes
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        rows = analytics.defect_report(tx.session, by, codes)
    columns = {
        "product": ["sku", "name", "product_line", "units", "claims", "rate_percent"],
        "product_line": ["product_line", "products", "units", "claims", "rate_percent"],
        "batch": ["sku", "batch", "units", "claims", "rate_percent"],
        "month": ["month", "claims", "units_in_service", "rate_percent"],
        "code": ["defect_code", "description", "claims", "share_percent"],
    }[by]
    _rows(rows, columns, as_json, as_csv, "No data yet.")


@report.command("sla")
@json_option
@csv_option
@pass_cli
def report_sla(cli: CliContext, as_json: bool, as_csv: bool) -> None:
    """SLA breaches: triage and resolution."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        rows = analytics.sla_report(tx.session)
    _rows(rows, ["sla", "claims", "breached", "open_overdue", "breach_rate_percent"],
          as_json, as_csv, "No claims.")


@report.command("resolution")
@click.option("--by", type=click.Choice(analytics.RESOLUTION_DIMENSIONS), default="product",
              show_default=True)
@json_option
@csv_option
@pass_cli
def report_resolution(cli: CliContext, by: str, as_json: bool, as_csv: bool) -> None:
    """Mean time to resolution, in days, of resolved claims."""
    with cli.crm.transaction(actor=default_actor(), readonly=True) as tx:
        rows = analytics.resolution_report(tx.session, by)
    key = "sku" if by == "product" else by
    _rows(rows, [key, "resolved", "mean_days", "max_days"], as_json, as_csv,
          "No resolved claims yet.")
