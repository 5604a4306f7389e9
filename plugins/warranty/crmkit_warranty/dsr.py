"""Data-subject rights: what the plugin stores about a customer, and its erasure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from crmkit_warranty.claims import claim_dict
from crmkit_warranty.models import WarrantyClaim, WarrantyOwnership, WarrantyUnit
from crmkit_warranty.units import unit_dict

if TYPE_CHECKING:
    from crmkit.uow import Transaction

__all__ = ["ERASED", "erase", "export"]

ERASED = "[erased]"


def export(tx: Transaction, customer_id: int) -> dict[str, Any] | None:
    """The customer's units (with ownership history) and claims, JSON-ready."""
    session = tx.session
    owned = select(WarrantyOwnership.unit_id).where(WarrantyOwnership.customer_id == customer_id)
    units = session.scalars(select(WarrantyUnit).where(
        (WarrantyUnit.customer_id == customer_id) | WarrantyUnit.id.in_(owned))
        .order_by(WarrantyUnit.id)).all()
    claims = session.scalars(select(WarrantyClaim).where(
        WarrantyClaim.customer_id == customer_id).order_by(WarrantyClaim.id)).all()
    if not units and not claims:
        return None
    return {"units": [unit_dict(session, u, history=True) for u in units],
            "claims": [claim_dict(session, c) for c in claims]}


def erase(tx: Transaction, customer_id: int) -> None:
    """Erase the free text a customer wrote (claim descriptions, reject reasons quoting it).

    Units, claims and their dates stay, linked to the anonymised customer: defect rates
    must not change when a customer exercises the right to erasure, and the rows hold no
    personal data once the kernel has anonymised the customer.
    """
    tx.session.execute(update(WarrantyClaim).where(WarrantyClaim.customer_id == customer_id)
                       .values(description=ERASED)
                       .execution_options(synchronize_session=False))
    tx.session.execute(update(WarrantyClaim).where(
        WarrantyClaim.customer_id == customer_id, WarrantyClaim.reject_reason.is_not(None))
        .values(reject_reason=ERASED).execution_options(synchronize_session=False))
