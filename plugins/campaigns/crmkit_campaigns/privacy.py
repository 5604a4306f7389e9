"""Data-subject rights: what the plugin holds about a customer, and its erasure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from crmkit_campaigns import consent
from crmkit_campaigns.models import Campaign, Consent, Member, SegmentMember, Suppression
from crmkit_campaigns.responses import to_dict

if TYPE_CHECKING:
    from crmkit import Transaction

__all__ = ["ERASED_LIST", "erase", "export"]

#: The suppression list that keeps an erased customer from ever being targeted again.
ERASED_LIST = "erased"


def export(tx: Transaction, customer_id: int) -> dict[str, Any] | None:
    """Memberships (with statuses), consent, suppression lists and frozen segments."""
    session = tx.session
    members = [
        {**to_dict(member), "campaign": code}
        for member, code in session.execute(
            select(Member, Campaign.code).join(Campaign, Campaign.id == Member.campaign_id)
            .where(Member.customer_id == customer_id).order_by(Member.id))
    ]
    consents = consent.consents_of(tx, customer_id)
    lists = list(session.scalars(select(Suppression.list_name).where(
        Suppression.customer_id == customer_id).order_by(Suppression.list_name)))
    segments = list(session.scalars(select(SegmentMember.segment_id).where(
        SegmentMember.customer_id == customer_id).order_by(SegmentMember.segment_id)))
    if not (members or consents or lists or segments):
        return None
    return {"memberships": members, "consent": consents, "suppression_lists": lists,
            "frozen_segments": segments}


def erase(tx: Transaction, customer_id: int) -> None:
    """Delete the customer's consent, lists and segment rows; keep its memberships with
    their statuses and revenue (no personal data: the kernel keeps the anonymised customer
    row), so campaign figures do not change; never target the customer again."""
    session = tx.session
    for model in (Consent, SegmentMember, Suppression):
        session.execute(delete(model).where(model.customer_id == customer_id))
    session.execute(update(Member).where(Member.customer_id == customer_id)
                    .values(conversion_ref=None).execution_options(synchronize_session=False))
    session.add(Suppression(list_name=ERASED_LIST, customer_id=customer_id, reason="erased"))
    session.flush()
    tx.audit("customer", customer_id, "erase", {"plugin": "campaigns"})
