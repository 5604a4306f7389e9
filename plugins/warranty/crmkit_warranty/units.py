"""Registered units: serial numbers of products owned by customers, with their warranty."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from crmkit.db import utcnow
from crmkit.errors import Conflict, Issue, NotFound, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit_warranty.catalog import get_product
from crmkit_warranty.models import WarrantyOwnership, WarrantyProduct, WarrantyUnit
from crmkit_warranty.terms import add_months

if TYPE_CHECKING:
    from crmkit.uow import Transaction

__all__ = ["get_unit", "import_units", "register_unit", "transfer_unit", "unit_dict"]


def _date(value: dt.date | str, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError([Issue(field, "must be a date YYYY-MM-DD", value)]) from None


def get_unit(session: Session, sku: str, serial: str) -> WarrantyUnit:
    """The unit ``serial`` of product ``sku``; :class:`NotFound` naming both otherwise."""
    product = get_product(session, sku)
    unit = session.scalars(select(WarrantyUnit).where(
        WarrantyUnit.product_id == product.id, WarrantyUnit.serial == serial)).first()
    if unit is None:
        raise NotFound(f"no registered unit with serial {serial!r} of product {sku!r}")
    return unit


def _check(tx: Transaction, product: WarrantyProduct, serial: str, purchase: dt.date,
           batch: str | None, extended: bool) -> list[Issue]:
    issues = []
    if not isinstance(serial, str) or not serial.strip() or len(serial) > 100:
        issues.append(Issue("serial", "must be 1 to 100 characters", serial))
    if purchase > utcnow().date():
        issues.append(Issue("purchase_date", "is in the future", purchase.isoformat()))
    if batch is not None and len(batch) > 100:
        issues.append(Issue("batch", "must be at most 100 characters", batch))
    if extended and product.extended_months is None:
        issues.append(Issue("extended", f"product {product.sku!r} offers no extended "
                            "warranty", extended))
    return issues


def register_unit(tx: Transaction, *, sku: str, serial: str, customer_id: int,
                  purchase_date: dt.date | str, batch: str | None = None,
                  extended: bool = False, purchase_interaction_id: int | None = None,
                  channel: str = "system") -> WarrantyUnit:
    """Register a unit; log a purchase on the owner's timeline unless one is linked."""
    session = tx.session
    product = get_product(session, sku)
    customer = tx.customers.get(customer_id)
    purchase = _date(purchase_date, "purchase_date")
    issues = _check(tx, product, serial, purchase, batch, extended)
    if issues:
        raise ValidationError(issues, context=f"unit {serial!r} of {sku!r}")
    existing = session.scalars(select(WarrantyUnit).where(
        WarrantyUnit.product_id == product.id, WarrantyUnit.serial == serial)).first()
    if existing is not None:
        raise Conflict(f"serial {serial!r} of product {sku!r} is already registered "
                       f"(unit {existing.id}, customer {existing.customer_id})")
    if purchase_interaction_id is not None:
        linked = tx.interactions.get(purchase_interaction_id)
        if linked.customer_id != customer.id or linked.kind != "purchase":
            raise ValidationError([Issue("purchase_interaction_id", "must be a purchase of "
                                         f"customer {customer.id}", purchase_interaction_id)])
    else:
        purchase_interaction_id = tx.interactions.log(
            customer, channel=channel, kind="purchase",
            occurred_at=dt.datetime.combine(purchase, dt.time(12), dt.UTC),
            summary=f"Purchase of {product.name} ({product.sku}), serial {serial}",
            payload={"warranty": {"sku": product.sku, "serial": serial}},
        ).id
    end = add_months(purchase, product.warranty_months)
    unit = WarrantyUnit(
        product_id=product.id, serial=serial, customer_id=customer.id, purchase_date=purchase,
        purchase_month=purchase.strftime("%Y-%m"), batch=batch, extended=extended,
        warranty_start=purchase, warranty_end=end,
        extended_end=add_months(end, product.extended_months)
        if extended and product.extended_months else None,
        purchase_interaction_id=purchase_interaction_id,
    )
    session.add(unit)
    session.flush()
    session.add(WarrantyOwnership(unit_id=unit.id, customer_id=customer.id, since=purchase,
                                  actor=tx.actor))
    tx.audit("warranty_unit", unit.id, "create", {"after": unit_dict(session, unit)})
    tx.emit("warranty.unit_registered", {"unit_id": unit.id, "customer_id": customer.id,
                                         "sku": sku, "serial": serial, "batch": batch})
    return unit


def transfer_unit(tx: Transaction, unit: WarrantyUnit, to_customer_id: int,
                  on: dt.date | str | None = None) -> WarrantyUnit:
    """Give ``unit`` a new owner from day ``on`` (today); the ownership history keeps both."""
    new_owner = tx.customers.get(to_customer_id)
    day = _date(on, "date") if on is not None else utcnow().date()
    if new_owner.id == unit.customer_id:
        raise ValidationError([Issue("to", f"customer {new_owner.id} already owns the unit")])
    if day > utcnow().date() or day < unit.purchase_date:
        raise ValidationError([Issue("date", "must be between the purchase date and today",
                                     day.isoformat())])
    current = tx.session.scalars(select(WarrantyOwnership).where(
        WarrantyOwnership.unit_id == unit.id, WarrantyOwnership.until.is_(None))).first()
    if current is not None:
        current.until = day
    previous = unit.customer_id
    unit.customer_id = new_owner.id
    tx.session.add(WarrantyOwnership(unit_id=unit.id, customer_id=new_owner.id, since=day,
                                     actor=tx.actor))
    tx.session.flush()
    tx.audit("warranty_unit", unit.id, "transfer",
             {"before": {"customer_id": previous}, "after": {"customer_id": new_owner.id}})
    tx.emit("warranty.unit_transferred", {"unit_id": unit.id, "from_customer_id": previous,
                                          "customer_id": new_owner.id, "date": day.isoformat()})
    return unit


def unit_dict(session: Session, unit: WarrantyUnit, *, history: bool = False) -> dict[str, Any]:
    """The unit as shown by ``units show`` and ``--json``."""
    product = session.get(WarrantyProduct, unit.product_id)
    assert product is not None
    data: dict[str, Any] = {
        "id": unit.id, "sku": product.sku, "product": product.name, "serial": unit.serial,
        "customer_id": unit.customer_id, "purchase_date": unit.purchase_date.isoformat(),
        "batch": unit.batch, "extended": unit.extended,
        "warranty_start": unit.warranty_start.isoformat(),
        "warranty_end": unit.warranty_end.isoformat(),
        "extended_end": unit.extended_end.isoformat() if unit.extended_end else None,
        "purchase_interaction_id": unit.purchase_interaction_id,
    }
    if history:
        rows = session.scalars(select(WarrantyOwnership).where(
            WarrantyOwnership.unit_id == unit.id).order_by(WarrantyOwnership.id))
        data["owners"] = [{"customer_id": r.customer_id, "since": r.since.isoformat(),
                           "until": r.until.isoformat() if r.until else None} for r in rows]
    return data


_TRUE = {"1", "true", "yes", "y"}


def import_units(tx: Transaction, records: Iterable[tuple[str, Mapping[str, Any]]]
                 ) -> dict[str, int]:
    """Register ``(where, record)`` pairs all or nothing; a unit already registered with the
    same product, serial and owner is skipped, so re-running an import changes nothing."""
    counts = {"created": 0, "unchanged": 0}
    issues: list[Issue] = []
    seen: dict[tuple[str, str], str] = {}
    for where, raw in records:
        sku, serial = str(raw.get("sku") or ""), str(raw.get("serial") or "")
        if (sku, serial) in seen:
            issues.append(Issue(f"{where}: serial", f"duplicate of {seen[sku, serial]}", serial))
            continue
        seen[sku, serial] = where
        try:
            customer_id = int(raw.get("customer_id") or "")
        except ValueError:
            issues.append(Issue(f"{where}: customer_id", "must be an integer",
                                raw.get("customer_id")))
            continue
        savepoint = tx.session.begin_nested()
        try:
            try:
                unit = get_unit(tx.session, sku, serial)
            except NotFound:
                unit = None
            if unit is not None and unit.customer_id == customer_id:
                counts["unchanged"] += 1
                savepoint.commit()
                continue
            extended = raw.get("extended")
            register_unit(tx, sku=sku, serial=serial, customer_id=customer_id,
                          purchase_date=str(raw.get("purchase_date") or ""),
                          batch=str(raw["batch"]) if raw.get("batch") else None,
                          extended=extended is True or str(extended).lower() in _TRUE)
            savepoint.commit()
            counts["created"] += 1
        except (ValidationError, NotFound, Conflict) as exc:
            savepoint.rollback()
            found = getattr(exc, "issues", None) or [Issue("", str(exc))]
            issues += [Issue(f"{where}: {i.path}".rstrip(": "), i.message, i.value)
                       for i in found]
    if issues:
        raise ValidationError(issues, context="unit import (nothing imported)")
    return counts
