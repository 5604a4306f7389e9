"""Earning points, reading accounts, and answering for them (export, erase)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, cast

from crmkit.db import utcnow
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from crmkit_loyalty.models import LoyaltyAccount
from crmkit_loyalty.settings import Settings

if TYPE_CHECKING:
    from crmkit.models import Interaction
    from crmkit.uow import Transaction

__all__ = ["award", "balance", "erase", "export", "points_for", "top"]


def points_for(interaction: Interaction, settings: Settings) -> int:
    """Points an interaction earns: its amount times the currency's rate, rounded down.

    Only the configured kinds earn points, and only positive amounts (refunds are not
    taken back in this version).
    """
    if interaction.kind not in settings.kinds or interaction.amount is None:
        return 0
    amount = Decimal(interaction.amount)
    if amount <= 0:
        return 0
    earned = (amount * settings.rate(interaction.currency)).to_integral_value(ROUND_FLOOR)
    return int(earned)


def award(tx: Transaction, interaction: Interaction, settings: Settings) -> int:
    """Credit the points ``interaction`` earns, in the caller's transaction.

    An ``UPDATE ... SET points = points + n`` (not read-modify-write), so two purchases
    committed at once both count; the first purchase creates the account. Emits
    ``loyalty.points_awarded`` and, when the tier changes, ``loyalty.tier_changed``.
    """
    earned = points_for(interaction, settings)
    if earned == 0:
        return 0
    session = tx.session
    customer_id = interaction.customer_id
    changed = cast("CursorResult[Any]", session.execute(
        update(LoyaltyAccount)
        .where(LoyaltyAccount.customer_id == customer_id)
        .values(points=LoyaltyAccount.points + earned, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ))
    if not changed.rowcount:
        session.add(LoyaltyAccount(customer_id=customer_id, points=earned))
        session.flush()
    total = balance(session, customer_id)
    tx.emit("loyalty.points_awarded", {
        "customer_id": customer_id, "interaction_id": interaction.id,
        "points": earned, "total": total,
    })
    before, after = settings.tier(total - earned), settings.tier(total)
    if before != after:
        tx.emit("loyalty.tier_changed",
                {"customer_id": customer_id, "before": before, "after": after})
    return earned


def balance(session: Session, customer_id: int) -> int:
    """The lifetime points of a customer (0 without an account)."""
    points = session.scalar(
        select(LoyaltyAccount.points).where(LoyaltyAccount.customer_id == customer_id)
        .execution_options(populate_existing=True)
    )
    return int(points or 0)


def top(session: Session, limit: int) -> list[tuple[int, int]]:
    """``(customer_id, points)`` of the ``limit`` accounts with the most points."""
    rows = session.execute(
        select(LoyaltyAccount.customer_id, LoyaltyAccount.points)
        .order_by(LoyaltyAccount.points.desc(), LoyaltyAccount.customer_id)
        .limit(limit)
    )
    return [(int(customer_id), int(points)) for customer_id, points in rows]


def export(session: Session, customer_id: int, settings: Settings) -> dict[str, Any] | None:
    """What the plugin stores about a customer, JSON-ready; ``None`` if nothing."""
    account = session.get(LoyaltyAccount, customer_id)
    if account is None:
        return None
    return {
        "points": account.points,
        "tier": settings.tier(account.points),
        "created_at": account.created_at.isoformat(),
        "updated_at": account.updated_at.isoformat(),
    }


def erase(session: Session, customer_id: int) -> None:
    """Forget a customer's account (the points are personal data)."""
    session.execute(delete(LoyaltyAccount).where(LoyaltyAccount.customer_id == customer_id))
