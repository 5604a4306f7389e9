"""Defect-rate thresholds, checked in the transaction of every claim that opens.

A rule (``[[plugin.warranty.alerts]]``) says "more than ``rate_percent`` % of a batch
(product, product line) claimed within ``within_days`` days of purchase". When a claim takes
the rate of its scope from at or below the threshold to above it, the plugin records a
``warranty_alert`` row and emits ``warranty.defect_threshold_crossed`` in the claim's own
transaction: both commit with the claim or not at all, and automation rules (``on =
"warranty.defect_threshold_crossed"``) can notify quality engineering at once. The counts
are two indexed ``COUNT(*)`` queries for the claim's scope, not a full report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from crmkit_warranty.analytics import counted
from crmkit_warranty.models import (
    WarrantyAlert,
    WarrantyClaim,
    WarrantyProduct,
    WarrantyUnit,
)
from crmkit_warranty.settings import AlertRule, Settings

if TYPE_CHECKING:
    from crmkit.uow import Transaction

__all__ = ["check_thresholds"]

C, U, P = WarrantyClaim, WarrantyUnit, WarrantyProduct


def _scope(rule: AlertRule, product: WarrantyProduct, unit: WarrantyUnit | None
           ) -> tuple[str, list[Any], list[Any]] | None:
    """(key, unit filters, claim filters) of the claim's scope under ``rule``."""
    if rule.scope == "batch":
        if unit is None or unit.batch is None:
            return None
        where = [U.product_id == product.id, U.batch == unit.batch]
        return f"{product.sku}/{unit.batch}", where, where
    if rule.scope == "product":
        return product.sku, [U.product_id == product.id], [C.product_id == product.id]
    line = select(P.id).where(P.product_line == product.product_line)
    return product.product_line, [U.product_id.in_(line)], [C.product_id.in_(line)]


def check_thresholds(tx: Transaction, claim: WarrantyClaim, product: WarrantyProduct,
                     unit: WarrantyUnit | None, settings: Settings) -> list[WarrantyAlert]:
    """Raise every alert that ``claim`` (flushed, counted) makes cross its threshold."""
    raised = []
    for rule in settings.alerts:
        if rule.within_days is not None and (
                claim.days_since_purchase is None or claim.days_since_purchase > rule.within_days):
            continue
        scope = _scope(rule, product, unit)
        if scope is None:
            continue
        key, unit_where, claim_where = scope
        units = tx.session.scalar(select(func.count()).select_from(U).where(*unit_where)) or 0
        if units < rule.min_units:
            continue
        query = select(func.count()).select_from(C).where(counted(), *claim_where)
        if rule.scope == "batch":
            query = query.join(U, U.id == C.unit_id)
        if rule.within_days is not None:
            query = query.where(C.days_since_purchase <= rule.within_days)
        claims = tx.session.scalar(query) or 0
        now, before = 100 * claims / units, 100 * (claims - 1) / units
        if not before <= rule.rate_percent < now:
            continue
        alert = WarrantyAlert(rule=rule.name, scope=rule.scope, scope_key=key,
                              claim_id=claim.id, claims=claims, units=units,
                              rate_percent=f"{now:.2f}")
        tx.session.add(alert)
        tx.session.flush()
        tx.emit("warranty.defect_threshold_crossed", {
            "alert_id": alert.id, "rule": rule.name, "scope": rule.scope, "key": key,
            "claims": claims, "units": units, "rate_percent": round(now, 2),
            "threshold_percent": rule.rate_percent, "within_days": rule.within_days,
            "claim_id": claim.id, "customer_id": claim.customer_id})
        raised.append(alert)
    return raised
