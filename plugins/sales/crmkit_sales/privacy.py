"""Data-subject rights: what the plugin holds about a customer, and erasing it.

Personal data lives in leads (name, e-mail, phone, title, notes) and in follow-ups (titles
and outcomes can name people). Opportunities are business records (amounts, stages): they
are exported, and kept on erasure with the customer's anonymised record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from crmkit_sales.models import Lead, Opportunity, Task

if TYPE_CHECKING:
    from crmkit.models import Customer
    from crmkit.uow import Transaction

__all__ = ["erase", "export"]


def _leads(tx: Transaction, customer: Customer) -> list[Lead]:
    match = [Lead.customer_id == customer.id, Lead.contact_id == customer.id]
    if customer.email:
        match.append(Lead.email == customer.email)
    return list(tx.session.scalars(select(Lead).where(or_(*match)).order_by(Lead.id)))


def export(tx: Transaction, customer: Customer) -> dict[str, Any] | None:
    """The customer's leads, opportunities and follow-ups; ``None`` when there are none."""
    from crmkit_sales import opportunities

    leads = [lead.to_dict() for lead in _leads(tx, customer)]
    opps = [opportunities.to_dict(tx, o) for o in tx.session.scalars(
        select(Opportunity).where(Opportunity.customer_id == customer.id)
        .order_by(Opportunity.id))]
    tasks = [t.to_dict() for t in tx.session.scalars(
        select(Task).where(Task.customer_id == customer.id).order_by(Task.id))]
    if not (leads or opps or tasks):
        return None
    return {"leads": leads, "opportunities": opps, "tasks": tasks}


def erase(tx: Transaction, customer: Customer) -> None:
    """Blank the personal fields of the customer's leads and follow-ups."""
    for lead in _leads(tx, customer):
        lead.contact_name = lead.email = lead.phone = lead.title = lead.notes = None
        lead.status_reason = None
        if lead.contact_id != customer.id:
            lead.company = None
    for task in tx.session.scalars(select(Task).where(Task.customer_id == customer.id)):
        task.title, task.outcome, task.owner = "(erased)", None, None
    tx.session.flush()
