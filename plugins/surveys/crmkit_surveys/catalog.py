"""Survey versions: add a draft, publish it, find the one to send or report on.

A key has versions 1, 2, ...; at most one draft (the newest) and at most one published
version. Adding a document while the newest version is a draft replaces the draft; adding
it while the newest is published starts a new draft. Publishing closes the version
published before (its invitations and responses stay, and say which version they were).
"""

from __future__ import annotations

from typing import Any

from crmkit import Conflict, NotFound, Transaction
from crmkit.db import utcnow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crmkit_surveys.definition import SurveyDefinition, parse
from crmkit_surveys.models import Invitation, Response, Survey

__all__ = ["add", "definition_of", "get", "list_surveys", "publish", "summary"]


def add(tx: Transaction, document: Any, *, context: str = "survey") -> Survey:
    """Store ``document`` as the draft of its key (a new version if none is a draft)."""
    definition = parse(document, context=context)
    latest = _latest(tx.session, definition.key)
    if latest is not None and latest.status == "draft":
        before = latest.definition
        latest.title, latest.definition = definition.title, dict(document)
        latest.audience, latest.anonymous = definition.audience, definition.anonymous
        tx.session.flush()
        tx.audit("surveys_survey", latest.id, "update", {"before": before, "after": document})
        return latest
    if latest is not None and latest.definition == document:
        return latest  # nothing changed: no new version
    survey = Survey(key=definition.key, version=(latest.version + 1) if latest else 1,
                    title=definition.title, status="draft", audience=definition.audience,
                    anonymous=definition.anonymous, definition=dict(document))
    tx.session.add(survey)
    tx.session.flush()
    tx.audit("surveys_survey", survey.id, "create", {"after": summary(survey)})
    return survey


def publish(tx: Transaction, key: str) -> Survey:
    """Publish the draft of ``key``; from now on it never changes."""
    latest = _latest(tx.session, key)
    if latest is None:
        raise NotFound(f"no survey {key!r}")
    if latest.status != "draft":
        raise Conflict(f"survey {key!r} has no draft to publish: version {latest.version} "
                       f"is {latest.status}; add a changed document to make a new version")
    previous = tx.session.scalars(select(Survey).where(
        Survey.key == key, Survey.status == "published").with_for_update()).all()
    for old in previous:
        old.status = "closed"
    latest.status, latest.published_at = "published", utcnow()
    tx.session.flush()
    tx.audit("surveys_survey", latest.id, "publish", {"version": latest.version})
    tx.emit("surveys.published", {"survey": key, "version": latest.version,
                                  "survey_id": latest.id})
    return latest


def get(session: Session, key: str, version: int | None = None, *,
        published: bool = False) -> Survey:
    """A version of ``key``: the given one, else the published one (or else the newest)."""
    query = select(Survey).where(Survey.key == key)
    if version is not None:
        survey = session.scalars(query.where(Survey.version == version)).first()
        if survey is None:
            raise NotFound(f"survey {key!r} has no version {version}")
        if published and survey.status == "draft":
            raise Conflict(f"version {version} of survey {key!r} is a draft; publish it first")
        return survey
    found = session.scalars(query.where(Survey.status == "published")).first()
    if found is None and published:
        if _latest(session, key) is None:
            raise NotFound(f"no survey {key!r}")
        raise Conflict(f"survey {key!r} is not published; run: crmkit surveys publish {key}")
    found = found or _latest(session, key)
    if found is None:
        raise NotFound(f"no survey {key!r}")
    return found


def definition_of(survey: Survey) -> SurveyDefinition:
    """The typed definition of a stored version (validated when it was added)."""
    return parse(survey.definition, context=f"survey {survey.key!r} v{survey.version}")


def list_surveys(session: Session) -> list[dict[str, Any]]:
    """Every version with its counts of invitations and responses."""
    invited = dict(session.execute(select(Invitation.survey_id, func.count())
                                   .group_by(Invitation.survey_id)).all())
    answered = dict(session.execute(select(Response.survey_id, func.count())
                                    .group_by(Response.survey_id)).all())
    return [
        {**summary(s), "invitations": invited.get(s.id, 0), "responses": answered.get(s.id, 0)}
        for s in session.scalars(select(Survey).order_by(Survey.key, Survey.version))
    ]


def summary(survey: Survey) -> dict[str, Any]:
    """A version as a JSON-ready row."""
    return {
        "key": survey.key, "version": survey.version, "title": survey.title,
        "status": survey.status, "audience": survey.audience, "anonymous": survey.anonymous,
        "questions": sum(len(p["questions"]) for p in survey.definition["pages"]),
        "created_at": survey.created_at.isoformat(),
        "published_at": survey.published_at.isoformat() if survey.published_at else None,
    }


def _latest(session: Session, key: str) -> Survey | None:
    return session.scalars(
        select(Survey).where(Survey.key == key).order_by(Survey.version.desc()).limit(1)
    ).first()

