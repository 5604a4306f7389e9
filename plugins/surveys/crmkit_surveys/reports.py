"""The report of one survey version: response rate, scores per question, groups, texts.

Groups (``by``): ``segment`` (how recipients were chosen), ``department``, ``role`` or
``month`` (of the response; of the invitation for the rate). For an anonymous survey a
group with fewer complete responses than ``min_group_size`` is suppressed (its name only),
and so are further groups when the total minus the shown groups would reveal it; the whole
report is suppressed below that size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit_surveys.catalog import definition_of
from crmkit_surveys.definition import SurveyDefinition
from crmkit_surveys.models import Invitation, Response, Survey
from crmkit_surveys.scores import percent, question_stats

__all__ = ["GROUPINGS", "build_report", "flat_rows"]

GROUPINGS = ("segment", "department", "role", "month")
ALL = "(all)"
NONE = "(none)"


def build_report(session: Session, survey: Survey, *, by: str | None = None,
                 min_group_size: int = 5, include_partial: bool = False) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    definition = definition_of(survey)
    responses = session.scalars(select(Response).where(Response.survey_id == survey.id)
                                .order_by(Response.id)).all()
    invitations = session.scalars(select(Invitation).where(Invitation.survey_id == survey.id)
                                  ).all()
    counted = [r for r in responses if include_partial or r.status == "complete"]
    minimum = min_group_size if survey.anonymous else 1
    report: dict[str, Any] = {
        "survey": survey.key, "version": survey.version, "title": survey.title,
        "status": survey.status, "anonymous": survey.anonymous,
        "include_partial": include_partial,
        "min_group_size": min_group_size if survey.anonymous else None,
        **_group(definition, ALL, counted, invitations, responses,
                 suppressed=len(counted) < minimum),
    }
    if by is not None:
        keyed: dict[str, list[Response]] = defaultdict(list)
        for r in counted:
            keyed[_key(r, by)].append(r)
        invited: dict[str, list[Invitation]] = defaultdict(list)
        for i in invitations:
            invited[_key(i, by)].append(i)
        every: dict[str, list[Response]] = defaultdict(list)
        for r in responses:
            every[_key(r, by)].append(r)
        report["by"] = by
        names = sorted(set(keyed) | set(invited))
        hidden = _suppressed(names, keyed, minimum) if survey.anonymous else set()
        report["groups"] = [
            _group(definition, name, keyed.get(name, []), invited.get(name, []),
                   every.get(name, []), suppressed=name in hidden)
            for name in names
        ]
    return report


def _suppressed(names: Sequence[str], keyed: dict[str, list[Response]], minimum: int
                ) -> set[str]:
    """The groups an anonymous report hides: those below ``minimum`` and, when that leaves
    fewer than ``minimum`` hidden responses, the smallest shown groups as well.

    Otherwise the total minus the shown groups would reveal a small group's answers
    (complementary, or secondary, suppression as statistical offices do it).
    """
    sizes = {name: len(keyed.get(name, [])) for name in names}
    hidden = {name for name, size in sizes.items() if size < minimum}
    shown = sorted((n for n in names if n not in hidden), key=lambda n: (sizes[n], n))
    while 0 < sum(sizes[n] for n in hidden) < minimum and shown:
        hidden.add(shown.pop(0))
    return hidden


def _key(row: Response | Invitation, by: str) -> str:
    if by == "month":
        when = row.submitted_at if isinstance(row, Response) else row.sent_at
        return when.strftime("%Y-%m")
    value = getattr(row, by)
    return str(value) if value else NONE


def _group(definition: SurveyDefinition, name: str, counted: Sequence[Response],
           invitations: Sequence[Invitation], every: Sequence[Response], *, suppressed: bool
           ) -> dict[str, Any]:
    if suppressed:
        return {"group": name, "suppressed": True, "questions": [], "free_text": []}
    complete = sum(1 for r in every if r.status == "complete")
    answered_invitations = sum(1 for i in invitations if i.answered == "complete")
    return {
        "group": name, "suppressed": False,
        "invitations": len(invitations),
        "responses": complete,
        "partial": sum(1 for r in every if r.status == "partial"),
        # Of those invited, the share who completed it (imports without a token count
        # as responses but not as invitations, so the rate only counts invitations).
        "response_rate": percent(answered_invitations, len(invitations)),
        "questions": [
            question_stats(q, [r.answers[q.id] for r in counted if q.id in r.answers])
            for q in definition.questions if q.type != "text"
        ],
        "free_text": [
            {"question": q.id, "text": r.answers[q.id],
             **({} if definition.anonymous else {"response_id": r.id,
                                                 "customer_id": r.customer_id})}
            for q in definition.questions if q.type == "text"
            for r in counted if q.id in r.answers
        ],
    }


#: Columns of the per-question table and of the CSV.
COLUMNS = ("group", "question", "type", "answers", "average", "nps", "promoters", "passives",
           "detractors", "csat", "ces", "distribution")


def flat_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (group, question): what the table and the CSV show."""
    rows: list[dict[str, Any]] = []
    for group in [report, *report.get("groups", [])]:
        if group["suppressed"]:
            rows.append({"group": group["group"], "question": "(suppressed for anonymity: "
                         f"min_group_size {report['min_group_size']})"})
            continue
        for stats in group["questions"]:
            row = {k: stats.get(k) for k in COLUMNS if k not in ("group", "distribution")}
            row["group"] = group["group"]
            dist = stats.get("distribution", {})
            row["distribution"] = " ".join(
                f"{k}:{v}" if not isinstance(v, dict)
                else f"{k}[{' '.join(f'{c}:{n}' for c, n in v.items())}]"
                for k, v in dist.items())
            rows.append(row)
    return rows
