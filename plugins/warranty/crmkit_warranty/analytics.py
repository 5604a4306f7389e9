"""Defect analytics, computed in SQL: one ``GROUP BY`` per report, on every backend.

Definitions (the README repeats them):

- a *counted claim* is any claim not rejected (a rejected claim was not a defect);
- *units in service* of a product, line or batch are its registered units; of a month, the
  units purchased in or before that month;
- *defect rate* = counted claims / units in service, in percent, rounded to 2 places;
- *time to resolution* runs from opening to ``resolve`` (a reopened claim starts again).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from crmkit.db import utcnow
from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from crmkit_warranty.lifecycle import OPEN_STATES
from crmkit_warranty.models import WarrantyClaim, WarrantyProduct, WarrantyUnit

__all__ = ["DEFECT_DIMENSIONS", "RESOLUTION_DIMENSIONS", "counted", "defect_report",
           "resolution_report", "sla_report"]

DEFECT_DIMENSIONS = ("product", "product_line", "batch", "month", "code")
RESOLUTION_DIMENSIONS = ("product", "remedy", "code")

C, U, P = WarrantyClaim, WarrantyUnit, WarrantyProduct


def counted() -> ColumnElement[bool]:
    """The claims that count as defects."""
    return C.state != "rejected"


def _rate(claims: Any, units: Any) -> Any:
    # Computed in SQL; rounded to 2 places in Python (PostgreSQL has no round(double, int)).
    return case((units > 0, literal(100.0) * claims / units), else_=None)


def _worst_first(rate: Any) -> tuple[Any, Any]:
    """Highest rate first, no rate last, on every backend (PostgreSQL sorts NULL first in
    DESC, MariaDB has no NULLS LAST)."""
    return case((rate.is_(None), 1), else_=0), rate.desc()


def _number(value: Any) -> float | None:
    if value is None:
        return None
    return float(round(Decimal(str(value)), 2))


def defect_report(session: Session, by: str = "product",
                  defect_codes: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Defect rates grouped ``by`` product, product_line, batch or month; or the top defect
    codes (``code``) with their share of all counted claims."""
    if by not in DEFECT_DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DEFECT_DIMENSIONS)}")
    rows = [dict(r._mapping) for r in session.execute(_QUERIES[by]())]
    for row in rows:
        for key in ("rate_percent", "share_percent"):
            if key in row:
                row[key] = _number(row[key])
        if by == "code":
            row["description"] = (defect_codes or {}).get(row["defect_code"])
    return rows


def _by_product() -> Any:
    units = (select(U.product_id, func.count().label("units"))
             .group_by(U.product_id).subquery())
    claims = (select(C.product_id, func.count().label("claims")).where(counted())
              .group_by(C.product_id).subquery())
    n_units = func.coalesce(units.c.units, 0)
    n_claims = func.coalesce(claims.c.claims, 0)
    return (select(P.sku, P.name, P.product_line, n_units.label("units"),
                   n_claims.label("claims"), _rate(n_claims, n_units).label("rate_percent"))
            .outerjoin(units, units.c.product_id == P.id)
            .outerjoin(claims, claims.c.product_id == P.id)
            .order_by(*_worst_first(_rate(n_claims, n_units)), P.sku))


def _by_line() -> Any:
    units = (select(P.product_line, func.count(U.id).label("units"))
             .join(U, U.product_id == P.id).group_by(P.product_line).subquery())
    claims = (select(P.product_line, func.count(C.id).label("claims"))
              .join(C, C.product_id == P.id).where(counted()).group_by(P.product_line)
              .subquery())
    lines = select(P.product_line, func.count().label("products")).group_by(
        P.product_line).subquery()
    n_units = func.coalesce(units.c.units, 0)
    n_claims = func.coalesce(claims.c.claims, 0)
    return (select(lines.c.product_line, lines.c.products, n_units.label("units"),
                   n_claims.label("claims"), _rate(n_claims, n_units).label("rate_percent"))
            .outerjoin(units, units.c.product_line == lines.c.product_line)
            .outerjoin(claims, claims.c.product_line == lines.c.product_line)
            .order_by(*_worst_first(_rate(n_claims, n_units)), lines.c.product_line))


def _by_batch() -> Any:
    # Both aggregates group by the raw columns (the (product_id, batch) index serves them)
    # and carry a non-null join key, coalesce(batch, ''): an equality join on it lets every
    # backend hash-join (or auto-index) the two aggregates, where "equal or both null"
    # would force a nested loop.
    key = func.coalesce(U.batch, "").label("batch_key")
    units = (select(U.product_id, U.batch, key, func.count().label("units"))
             .group_by(U.product_id, U.batch).subquery())
    claims = (select(U.product_id, key, func.count().label("claims"))
              .select_from(C).join(U, U.id == C.unit_id).where(counted())
              .group_by(U.product_id, U.batch).subquery())
    n_claims = func.coalesce(claims.c.claims, 0)
    return (select(P.sku, units.c.batch, units.c.units, n_claims.label("claims"),
                   _rate(n_claims, units.c.units).label("rate_percent"))
            .select_from(units).join(P, P.id == units.c.product_id)
            .outerjoin(claims, and_(claims.c.product_id == units.c.product_id,
                                    claims.c.batch_key == units.c.batch_key))
            .order_by(*_worst_first(_rate(n_claims, units.c.units)), P.sku, units.c.batch))


def _by_month() -> Any:
    claims = (select(C.opened_month.label("month"), func.count().label("claims"))
              .where(counted()).group_by(C.opened_month).subquery())
    in_service = (select(func.count()).select_from(U)
                  .where(U.purchase_month <= claims.c.month).scalar_subquery())
    return (select(claims.c.month, claims.c.claims, in_service.label("units_in_service"),
                   _rate(claims.c.claims, in_service).label("rate_percent"))
            .order_by(claims.c.month))


def _by_code() -> Any:
    total = select(func.count()).select_from(C).where(counted()).scalar_subquery()
    n = func.count()
    return (select(C.defect_code, n.label("claims"),
                   _rate(n, total).label("share_percent"))
            .where(counted()).group_by(C.defect_code).order_by(n.desc(), C.defect_code))


_QUERIES = {"product": _by_product, "product_line": _by_line, "batch": _by_batch,
            "month": _by_month, "code": _by_code}


def sla_report(session: Session, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per SLA: claims, breaches (flagged by the timer, met late, or overdue and open) and
    the breach rate; counted in SQL."""
    now = now or utcnow()
    triage_breach = or_(C.triage_breached.is_(True), C.triaged_at > C.triage_due_at,
                        and_(C.state == "reported", C.triage_due_at < now))
    resolution_breach = or_(C.resolution_breached.is_(True),
                            C.resolved_at > C.resolution_due_at,
                            and_(C.state.in_(OPEN_STATES), C.resolution_due_at < now))
    rows = []
    for name, breach, open_now in (
        ("triage", triage_breach, and_(C.state == "reported", C.triage_due_at < now)),
        ("resolution", resolution_breach,
         and_(C.state.in_(OPEN_STATES), C.resolution_due_at < now)),
    ):
        total, breached, overdue = session.execute(select(
            func.count(), func.coalesce(func.sum(case((breach, 1), else_=0)), 0),
            func.coalesce(func.sum(case((open_now, 1), else_=0)), 0),
        ).where(counted())).one()
        rows.append({"sla": name, "claims": int(total), "breached": int(breached),
                     "open_overdue": int(overdue),
                     "breach_rate_percent": round(100 * int(breached) / int(total), 2)
                     if total else None})
    return rows


def resolution_report(session: Session, by: str = "product") -> list[dict[str, Any]]:
    """Mean time to resolution (days) of resolved claims, grouped ``by`` product, remedy
    or defect code."""
    if by not in RESOLUTION_DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(RESOLUTION_DIMENSIONS)}")
    key = {"product": P.sku, "remedy": C.remedy, "code": C.defect_code}[by]
    mean = func.avg(C.resolution_seconds) / literal(86400.0)
    query = (select(key.label(by if by != "product" else "sku"),
                    func.count().label("resolved"), mean.label("mean_days"),
                    (func.max(C.resolution_seconds) / literal(86400.0)).label("max_days"))
             .select_from(C).join(P, P.id == C.product_id)
             .where(C.resolution_seconds.is_not(None)).group_by(key).order_by(key))
    rows = [dict(r._mapping) for r in session.execute(query)]
    for row in rows:
        row["mean_days"], row["max_days"] = _number(row["mean_days"]), _number(row["max_days"])
    return rows
