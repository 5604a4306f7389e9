"""Recording responses: by token, or imported from another tool's export.

Each response is validated against the version its invitation belongs to. A customer's
response goes on the timeline as a ``feedback`` interaction; every response emits
``surveys.response_recorded``, and an NPS answer from 0 to 6 emits ``surveys.detractor``
so that a rule or workflow can follow up (closing the loop).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from crmkit import Conflict, Rejected, Transaction
from crmkit.db import utcnow
from sqlalchemy import select

from crmkit_surveys.answers import check_answers
from crmkit_surveys.catalog import definition_of
from crmkit_surveys.definition import SurveyDefinition
from crmkit_surveys.invitations import find_by_token
from crmkit_surveys.models import Invitation, Response, Survey

__all__ = ["DETRACTOR_MAX", "respond", "store"]

#: NPS: 0-6 detractors, 7-8 passives, 9-10 promoters.
DETRACTOR_MAX = 6


def respond(tx: Transaction, token: str, answers: Any, *, partial: bool = False,
            now: dt.datetime | None = None) -> Response:
    """Record the answers of the invitation ``token`` opens.

    Refused, with nothing written: an unknown or expired token, an invitation already
    answered completely (or at all, for an anonymous survey), answers that do not fit the
    version. A partial response (``partial=True``) is kept as such; answering again with
    the same token completes it.
    """
    now = now or utcnow()
    invitation = find_by_token(tx, token)
    survey = tx.session.get(Survey, invitation.survey_id)
    assert survey is not None
    if invitation.expires_at <= now:
        raise Rejected(f"this survey link expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC")
    if invitation.answered == "complete" or (invitation.answered and survey.anonymous):
        raise Conflict(f"this invitation to survey {survey.key!r} was already answered")
    return store(tx, survey, answers, partial=partial, invitation=invitation, now=now,
                 source="token")


def store(tx: Transaction, survey: Survey, answers: Any, *, partial: bool = False,
          invitation: Invitation | None = None, customer_id: int | None = None,
          department: str | None = None, role: str | None = None,
          segment: str | None = None, now: dt.datetime | None = None,
          source: str = "token", external_id: str | None = None,
          context: str = "answers") -> Response:
    """Validate and write one response (the common path of :func:`respond` and imports)."""
    now = now or utcnow()
    if survey.status == "draft":
        raise Conflict(f"survey {survey.key!r} v{survey.version} is a draft; publish it first")
    definition = definition_of(survey)
    checked = check_answers(definition, answers, partial=partial, context=context)
    status = "complete" if checked.complete else "partial"
    if invitation is not None:
        customer_id = invitation.customer_id
        department, role = invitation.department, invitation.role
        segment = invitation.segment
        invitation.answered = status
    previous: dict[str, Any] = {}
    response = None
    if invitation is not None and not survey.anonymous:
        response = tx.session.scalars(
            select(Response).where(Response.invitation_id == invitation.id)).first()
    if response is None:
        response = Response(survey_id=survey.id, source=source, external_id=external_id)
        tx.session.add(response)
    else:
        previous = dict(response.answers)
    if survey.anonymous:
        # Nothing that links the answer to the person: no invitation, no customer, and the
        # day only (an exact time could be matched with the invitation's change).
        response.invitation_id = response.customer_id = None
        now = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    else:
        response.invitation_id = invitation.id if invitation is not None else None
        response.customer_id = customer_id
    response.department, response.role, response.segment = department, role, segment
    response.status, response.answers, response.submitted_at = status, checked.answers, now
    tx.session.flush()
    _announce(tx, survey, definition, response, previous)
    return response


def _announce(tx: Transaction, survey: Survey, definition: SurveyDefinition,
              response: Response, previous: Mapping[str, Any]) -> None:
    nps = {q.id: response.answers[q.id] for q in definition.questions
           if q.type == "nps" and q.id in response.answers}
    tx.emit("surveys.response_recorded", {
        "survey": survey.key, "version": survey.version, "response_id": response.id,
        "customer_id": response.customer_id, "status": response.status, "nps": nps,
    })
    for question_id, score in nps.items():
        if score <= DETRACTOR_MAX and previous.get(question_id) != score:
            tx.emit("surveys.detractor", {
                "survey": survey.key, "version": survey.version, "response_id": response.id,
                "customer_id": response.customer_id, "question": question_id, "score": score,
            })
    if response.customer_id is not None:
        scores = ", ".join(f"{k}={v}" for k, v in nps.items())
        tx.interactions.log(
            response.customer_id, channel="web", kind="feedback", direction="inbound",
            occurred_at=response.submitted_at,
            summary=f"Survey response: {survey.title} (v{survey.version})"
                    + (f", {scores}" if scores else "")
                    + (" [partial]" if response.status == "partial" else ""),
            payload={"survey": survey.key, "version": survey.version,
                     "response_id": response.id, "status": response.status},
        )

