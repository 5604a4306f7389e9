"""Finding and flagging customers that share an e-mail address or a phone number."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from crmkit.models import Customer
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, aliased

from crmkit_dataquality.models import DuplicateFlag

if TYPE_CHECKING:
    from crmkit.uow import Transaction

__all__ = ["flag", "forget", "involving", "listing"]


def flag(tx: Transaction, customer: Customer, fields: Iterable[str]) -> list[DuplicateFlag]:
    """Flag every other customer that shares one of ``fields`` with ``customer``.

    Already flagged pairs are not flagged again. Each new flag is announced as
    ``dataquality.duplicate_suspected``. The e-mail lookup uses the kernel's index; phone
    numbers are compared in their normalised form (which this plugin writes).
    """
    session = tx.session
    flagged: list[DuplicateFlag] = []
    for field in fields:
        value = getattr(customer, field)
        if not value:
            continue
        column = Customer.email if field == "email" else Customer.phone
        others = session.scalars(
            select(Customer.id).where(column == value, Customer.id != customer.id)
            .order_by(Customer.id)
        ).all()
        known = set(session.scalars(
            select(DuplicateFlag.duplicate_of_id).where(
                DuplicateFlag.customer_id == customer.id, DuplicateFlag.reason == field)
        ))
        for other in others:
            if other in known:
                continue
            row = DuplicateFlag(customer_id=customer.id, duplicate_of_id=other, reason=field)
            session.add(row)
            flagged.append(row)
            tx.emit("dataquality.duplicate_suspected",
                    {"customer_id": customer.id, "duplicate_of_id": other, "reason": field})
    session.flush()
    return flagged


def listing(session: Session, customer_id: int | None = None, limit: int = 100
            ) -> list[dict[str, Any]]:
    """Flags with both customers' names, newest first (of ``customer_id`` if given)."""
    other = aliased(Customer)
    query = (
        select(DuplicateFlag, Customer.name, other.name)
        .join(Customer, Customer.id == DuplicateFlag.customer_id)
        .join(other, other.id == DuplicateFlag.duplicate_of_id)
        .order_by(DuplicateFlag.id.desc())
        .limit(limit)
    )
    if customer_id is not None:
        query = query.where(or_(DuplicateFlag.customer_id == customer_id,
                                DuplicateFlag.duplicate_of_id == customer_id))
    return [
        {"id": row.id, "customer_id": row.customer_id, "name": name,
         "duplicate_of_id": row.duplicate_of_id, "duplicate_of_name": other_name,
         "reason": row.reason, "detected_at": row.detected_at.isoformat()}
        for row, name, other_name in session.execute(query)
    ]


def involving(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """Every flag that names ``customer_id`` on either side, JSON-ready."""
    rows = session.scalars(
        select(DuplicateFlag).where(or_(DuplicateFlag.customer_id == customer_id,
                                        DuplicateFlag.duplicate_of_id == customer_id))
        .order_by(DuplicateFlag.id)
    )
    return [{"customer_id": r.customer_id, "duplicate_of_id": r.duplicate_of_id,
             "reason": r.reason, "detected_at": r.detected_at.isoformat()} for r in rows]


def forget(session: Session, customer_id: int) -> None:
    """Delete every flag that names ``customer_id``."""
    session.execute(delete(DuplicateFlag).where(or_(
        DuplicateFlag.customer_id == customer_id, DuplicateFlag.duplicate_of_id == customer_id
    )))
