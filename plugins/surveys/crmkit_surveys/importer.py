"""Importing responses exported by other survey tools (CSV or JSON).

A record names its respondent by ``token`` (an invitation of ours), ``customer_id`` or
``email`` (a customer); for an anonymous employee survey it names none and may give
``department`` and ``role``. ``id`` is the record's id in the other tool: a record whose id
was imported before is skipped, so re-running an import never duplicates. ``submitted_at``
(ISO 8601) keeps the original time; ``partial`` (true/false) marks an unfinished response.

JSON: a list of objects, answers either under ``answers`` or as top-level keys. CSV: one
column per question id; multiple choices separated by ``;``, matrix cells as
``row=column;row=column``, yes/no as yes/no/true/false/1/0.

Either every record is imported or none (the error names each bad record), or with
``skip_errors`` the good ones are and the bad ones are returned with their problems.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from crmkit import CrmkitError, Issue, NotFound, Transaction, ValidationError
from sqlalchemy import select

from crmkit_surveys.catalog import definition_of
from crmkit_surveys.definition import NUMERIC_TYPES, SurveyDefinition
from crmkit_surveys.invitations import find_by_token
from crmkit_surveys.models import Response, Survey
from crmkit_surveys.responses import respond, store

__all__ = ["ImportResult", "import_records", "read_records"]

_META = ("token", "customer_id", "email", "id", "submitted_at", "partial", "department",
         "role", "answers")


@attrs.frozen
class ImportResult:
    imported: int
    skipped: int
    rejected: list[dict[str, Any]]


def read_records(path: str | Path) -> tuple[list[dict[str, Any]], str]:
    """The records of a ``.json`` or ``.csv`` file, and how to name one (``line``/``record``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError([Issue(str(path), f"cannot read the file: {exc.strerror}")]) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError([Issue(str(path), f"not valid JSON: {exc}")]) from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValidationError([Issue(str(path), "must be a list of objects")])
        return data, "record"
    return [dict(row) for row in csv.DictReader(text.splitlines())], "line"


def import_records(tx: Transaction, survey: Survey, records: list[dict[str, Any]], *,
                   naming: str = "record", skip_errors: bool = False) -> ImportResult:
    """Import ``records`` into ``survey`` in the caller's transaction."""
    definition = definition_of(survey)
    imported = skipped = 0
    rejected: list[dict[str, Any]] = []
    issues: list[Issue] = []
    for n, raw in enumerate(records):
        where = f"line {n + 2}" if naming == "line" else f"record {n}"
        # The kernel has no savepoint API yet: events emitted inside a rolled-back
        # savepoint must also leave the transaction's pending list.
        pending = len(tx._pending_events)
        try:
            with tx.session.begin_nested():
                if _import_one(tx, survey, definition, raw, where, from_csv=naming == "line"):
                    imported += 1
                else:
                    skipped += 1
        except CrmkitError as exc:
            del tx._pending_events[pending:]
            found = ([_located(issue, where) for issue in exc.issues]
                     if isinstance(exc, ValidationError) else [Issue(where, str(exc))])
            if skip_errors:
                rejected.append({**raw, "errors": "; ".join(map(str, found))})
            else:
                issues.extend(found)
    if issues:
        raise ValidationError(issues, context=f"importing responses into {survey.key!r}")
    return ImportResult(imported=imported, skipped=skipped, rejected=rejected)


def _located(issue: Issue, where: str) -> Issue:
    if issue.path.startswith(where):
        return issue
    return Issue(f"{where}.{issue.path}" if issue.path else where, issue.message, issue.value)


def _import_one(tx: Transaction, survey: Survey, definition: SurveyDefinition,
                raw: Mapping[str, Any], where: str, *, from_csv: bool) -> bool:
    external_id = _text(raw.get("id"))
    if external_id and tx.session.scalar(select(Response.id).where(
            Response.survey_id == survey.id, Response.external_id == external_id)):
        return False
    answers = (raw["answers"] if isinstance(raw.get("answers"), Mapping)
               else {k: v for k, v in raw.items() if k not in _META})
    if from_csv:
        answers = _from_cells(definition, answers, where)
    partial = _flag(raw.get("partial"), f"{where}.partial")
    when = _time(raw.get("submitted_at"), f"{where}.submitted_at")
    token = _text(raw.get("token"))
    if token:
        invitation = find_by_token(tx, token)
        if invitation.survey_id != survey.id:
            raise ValidationError([Issue(f"{where}.token", "belongs to another survey")])
        response = respond(tx, token, answers, partial=partial, now=when)
        response.source, response.external_id = "import", external_id
        return True
    customer_id = None if survey.anonymous else _customer(tx, raw, where)
    store(tx, survey, answers, partial=partial, customer_id=customer_id,
          department=_text(raw.get("department")), role=_text(raw.get("role")),
          segment="import", now=when, source="import", external_id=external_id,
          context=where)
    return True


def _customer(tx: Transaction, raw: Mapping[str, Any], where: str) -> int:
    if _text(raw.get("customer_id")):
        try:
            return tx.customers.get(int(str(raw["customer_id"]))).id
        except ValueError:
            raise ValidationError([Issue(f"{where}.customer_id", "must be a number",
                                         raw["customer_id"])]) from None
    email = _text(raw.get("email"))
    if email:
        found = tx.customers.find_by_email(email)
        if len(found) != 1:
            raise NotFound(f"{where}: {len(found)} customers have the e-mail {email!r}")
        return found[0].id
    raise ValidationError([Issue(where, "names no respondent: give token, customer_id or "
                                 "email")])


def _from_cells(definition: SurveyDefinition, cells: Mapping[str, Any], where: str
                ) -> dict[str, Any]:
    known = {q.id: q for q in definition.questions}
    answers: dict[str, Any] = {}
    for key, cell in cells.items():
        text = _text(cell)
        question = known.get(key)
        if not text or question is None:
            answers[key] = text or None
            continue
        if question.type in NUMERIC_TYPES:
            try:
                answers[key] = int(text)
            except ValueError:
                answers[key] = text  # the answer check names the question and the rule
        elif question.type == "yes_no":
            answers[key] = {"yes": True, "true": True, "1": True,
                            "no": False, "false": False, "0": False}.get(text.lower(), text)
        elif question.type == "multiple_choice":
            answers[key] = [part.strip() for part in text.split(";") if part.strip()]
        elif question.type == "matrix":
            pairs = [part.split("=", 1) for part in text.split(";") if part.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValidationError([Issue(f"{where}.{key}", "write row=column;row=column",
                                             text)])
            answers[key] = {row.strip(): column.strip() for row, column in pairs}
        else:
            answers[key] = text
    return answers


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _flag(value: Any, where: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ValidationError([Issue(where, "must be true or false", value)])


def _time(value: Any, where: str) -> dt.datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError([Issue(where, "must be an ISO 8601 time", value)]) from None
    if when.tzinfo is None:
        raise ValidationError([Issue(where, "needs a UTC offset (Z or +01:00)", value)])
    return when.astimezone(dt.UTC)
