"""Checking a set of answers against one survey version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from crmkit import Issue, ValidationError

from crmkit_surveys.definition import SurveyDefinition, check_value

__all__ = ["Checked", "check_answers"]


@attrs.frozen
class Checked:
    """Answers that passed: only those of questions that were asked, and whether complete."""

    answers: dict[str, Any]
    complete: bool
    missing: tuple[str, ...]


def check_answers(definition: SurveyDefinition, answers: Any, *, partial: bool = False,
                  context: str = "answers") -> Checked:
    """Validate ``answers`` (question id → value) against ``definition``.

    A question hidden by its ``show_if`` must not be answered; a shown required question
    must be, unless ``partial`` (then the response is kept as partial). ``None`` counts as
    not answered. Raises :class:`ValidationError` listing every problem by question id.
    """
    if not isinstance(answers, Mapping):
        raise ValidationError([Issue("answers", "must be an object of question id: answer",
                                     answers)], context=context)
    issues: list[Issue] = []
    known = set(definition.ids)
    for question_id in answers:
        if question_id not in known:
            issues.append(Issue(str(question_id), "no such question in survey "
                                f"{definition.key!r}; questions: "
                                f"{', '.join(sorted(known))}"))
    given = {k: v for k, v in answers.items() if k in known and v is not None}
    kept: dict[str, Any] = {}
    missing: list[str] = []
    for question in definition.questions:
        value = given.get(question.id)
        if not question.shown(kept):
            if value is not None:
                issues.append(Issue(question.id, "was not asked (shown only when "
                                    f"{_condition(question.show_if)}); leave it out", value))
            continue
        if value is None:
            if question.required:
                missing.append(question.id)
            continue
        problem = check_value(question, value)
        if problem:
            issues.append(Issue(question.id, problem, value))
            continue
        if question.type == "matrix" and question.required and len(value) < len(question.rows):
            missing.append(question.id)
        kept[question.id] = value
    if missing and not partial:
        issues.extend(Issue(q, "is required") for q in missing)
    if issues:
        raise ValidationError(sorted(issues, key=lambda i: i.path), context=context)
    return Checked(answers=kept, complete=not missing, missing=tuple(missing))


def _condition(show_if: Mapping[str, Any] | None) -> str:
    assert show_if is not None
    if "equals" in show_if:
        return f"{show_if['question']} is {show_if['equals']!r}"
    return f"{show_if['question']} is one of {', '.join(map(repr, show_if['in']))}"
