"""Data-subject rights: what the plugin holds about a customer, and forgetting it."""

from __future__ import annotations

from typing import Any

from crmkit import Transaction
from sqlalchemy import delete, func, select

from crmkit_surveys.catalog import definition_of
from crmkit_surveys.models import Invitation, Response, Survey

__all__ = ["erase", "export", "forget_employee"]


def export(tx: Transaction, customer_id: int) -> dict[str, Any] | None:
    """The customer's invitations and responses, JSON-ready; ``None`` if there are none."""
    session = tx.session
    invitations = session.execute(
        select(Invitation, Survey).join(Survey, Survey.id == Invitation.survey_id)
        .where(Invitation.customer_id == customer_id).order_by(Invitation.id)).all()
    responses = session.execute(
        select(Response, Survey).join(Survey, Survey.id == Response.survey_id)
        .where(Response.customer_id == customer_id).order_by(Response.id)).all()
    if not invitations and not responses:
        return None
    return {
        "invitations": [
            {"survey": s.key, "version": s.version, "sent_at": i.sent_at.isoformat(),
             "expires_at": i.expires_at.isoformat(), "reminders": i.reminders,
             "answered": i.answered}
            for i, s in invitations
        ],
        "responses": [
            {"survey": s.key, "version": s.version, "status": r.status,
             "answers": dict(r.answers), "submitted_at": r.submitted_at.isoformat()}
            for r, s in responses
        ],
    }


def erase(tx: Transaction, customer_id: int) -> None:
    """Forget the customer: invitations go; responses keep their scores for statistics but
    lose the link to the customer and every free-text answer (it may name the person)."""
    session = tx.session
    for response in session.scalars(select(Response).where(Response.customer_id == customer_id)):
        survey = session.get(Survey, response.survey_id)
        assert survey is not None
        texts = {q.id for q in definition_of(survey).questions if q.type == "text"}
        response.answers = {k: v for k, v in response.answers.items() if k not in texts}
        response.customer_id = None
        response.invitation_id = None
    session.flush()
    session.execute(delete(Invitation).where(Invitation.customer_id == customer_id))
    tx.audit("customer", customer_id, "erase", {"plugin": "surveys"})


def forget_employee(tx: Transaction, email: str) -> int:
    """Forget an employee (employees are not customers, so the kernel's erasure does not
    reach them): their invitations go, their responses lose the link and free texts.

    Returns how many invitations were removed.
    """
    session = tx.session
    address = email.strip().lower()
    ids = session.scalars(select(Invitation.id).where(
        func.lower(Invitation.email) == address)).all()
    for response in session.scalars(select(Response).where(Response.invitation_id.in_(ids))):
        survey = session.get(Survey, response.survey_id)
        assert survey is not None
        texts = {q.id for q in definition_of(survey).questions if q.type == "text"}
        response.answers = {k: v for k, v in response.answers.items() if k not in texts}
        response.invitation_id = None
    session.flush()
    session.execute(delete(Invitation).where(Invitation.id.in_(ids)))
    tx.audit("surveys_employee", address, "erase", {"invitations": len(ids)})
    return len(ids)
