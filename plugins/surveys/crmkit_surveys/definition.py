"""Survey documents: loading (JSON or TOML), validation, and the typed form.

A document is first checked against ``schemas/survey.schema.json`` (shipped in this
package), then for what a schema cannot say: unique question ids, branching that refers to
an earlier question with a value that question can have, sane ranges. Every problem is an
:class:`crmkit.Issue` whose path names the field (``pages[0].questions[2].max``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from crmkit import Issue, ValidationError
from crmkit.schemas import compile_schema, issues_of
from jsonschema import Draft202012Validator

__all__ = ["NUMERIC_TYPES", "Question", "SurveyDefinition", "load_document", "parse",
           "survey_schema"]

#: Question types whose answers are numbers (averages and distributions).
NUMERIC_TYPES = frozenset({"nps", "rating", "scale"})
_FIXED_RANGES = {"nps": (0, 10), "rating": (1, 5)}


@cache
def survey_schema() -> dict[str, Any]:
    """The survey document's JSON Schema."""
    text = resources.files("crmkit_surveys").joinpath("schemas/survey.schema.json").read_text(
        encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return compile_schema(survey_schema(), "survey.schema.json")


@attrs.frozen
class Question:
    """One question, with its range or options resolved."""

    id: str
    type: str
    text: str
    path: str
    page: int
    required: bool = False
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()
    min_choices: int = 0
    max_choices: int | None = None
    rows: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    max_length: int = 5000
    metric: str | None = None
    show_if: Mapping[str, Any] | None = None

    def shown(self, answers: Mapping[str, Any]) -> bool:
        """Whether the question is asked, given the earlier ``answers``."""
        if self.show_if is None:
            return True
        given = answers.get(self.show_if["question"])
        if given is None:
            return False
        wanted = ([self.show_if["equals"]] if "equals" in self.show_if
                  else list(self.show_if["in"]))
        values = given if isinstance(given, list) else [given]
        return any(_same(v, w) for v in values for w in wanted)


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; a yes/no answer must not match the number 1.
    return type(a) is type(b) and a == b


@attrs.frozen
class SurveyDefinition:
    """A validated survey document and its questions in order."""

    key: str
    title: str
    audience: str
    anonymous: bool
    questions: tuple[Question, ...]
    document: Mapping[str, Any]

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(question_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(q.id for q in self.questions)


def load_document(path: str | Path) -> dict[str, Any]:
    """Read a survey document from a ``.json`` or ``.toml`` file (by its suffix)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError([Issue(str(path), f"cannot read the file: {exc.strerror}")]) from None
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        data = json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError([Issue(str(path), f"not valid {path.suffix.lstrip('.').upper()}: "
                                         f"{exc}")]) from None
    if not isinstance(data, dict):
        raise ValidationError([Issue(str(path), "a survey document must be an object")])
    return data


def parse(document: Any, *, context: str = "survey") -> SurveyDefinition:
    """Validate ``document`` and return its typed form; :class:`ValidationError` otherwise."""
    issues = issues_of(_validator(), document)
    if issues:
        raise ValidationError(issues, context=context)
    questions: list[Question] = []
    seen: dict[str, Question] = {}
    for p, page in enumerate(document["pages"]):
        for n, raw in enumerate(page["questions"]):
            path = f"pages[{p}].questions[{n}]"
            question = _question(raw, path, p)
            issues.extend(_check_question(question, raw, seen))
            if question.id in seen:
                issues.append(Issue(f"{path}.id", f"duplicate question id {question.id!r} "
                                    f"(first at {seen[question.id].path})", question.id))
            else:
                seen[question.id] = question
            questions.append(question)
    audience = document.get("audience", "customers")
    anonymous = bool(document.get("anonymous", False))
    if anonymous and audience != "employees":
        issues.append(Issue("anonymous", "only employee surveys can be anonymous (a customer's "
                            "answer goes on the customer's timeline)", True))
    if issues:
        raise ValidationError(sorted(issues, key=lambda i: i.path), context=context)
    return SurveyDefinition(key=document["key"], title=document["title"], audience=audience,
                            anonymous=anonymous, questions=tuple(questions), document=document)


def _question(raw: Mapping[str, Any], path: str, page: int) -> Question:
    kind = raw["type"]
    low, high = _FIXED_RANGES.get(kind, (raw.get("min"), raw.get("max")))
    if kind == "yes_no":
        low = high = None
    return Question(
        id=raw["id"], type=kind, text=raw["text"], path=path, page=page,
        required=bool(raw.get("required", False)), low=low, high=high,
        choices=tuple(raw.get("choices", ())), min_choices=int(raw.get("min_choices", 0)),
        max_choices=raw.get("max_choices"), rows=tuple(raw.get("rows", ())),
        columns=tuple(raw.get("columns", ())), max_length=int(raw.get("max_length", 5000)),
        metric=raw.get("metric"), show_if=raw.get("show_if"),
    )


_ALLOWED = {
    "min": {"scale"}, "max": {"scale"},
    "choices": {"single_choice", "multiple_choice"},
    "min_choices": {"multiple_choice"}, "max_choices": {"multiple_choice"},
    "rows": {"matrix"}, "columns": {"matrix"}, "max_length": {"text"},
    "metric": {"rating", "scale"},
}


def _check_question(q: Question, raw: Mapping[str, Any], earlier: Mapping[str, Question]
                    ) -> list[Issue]:
    issues = [Issue(f"{q.path}.{name}", f"does not apply to a {q.type} question", raw[name])
              for name, types in _ALLOWED.items() if name in raw and q.type not in types]
    if q.type == "scale" and q.low is not None and q.high is not None and q.low >= q.high:
        issues.append(Issue(f"{q.path}.max", f"must be greater than min ({q.low})", q.high))
    if q.type == "multiple_choice":
        top = q.max_choices if q.max_choices is not None else len(q.choices)
        if top > len(q.choices):
            issues.append(Issue(f"{q.path}.max_choices",
                                f"there are only {len(q.choices)} choices", top))
        if q.min_choices > top:
            issues.append(Issue(f"{q.path}.min_choices", f"must be <= max_choices ({top})",
                                q.min_choices))
    if q.show_if is not None:
        issues.extend(_check_branch(q, earlier))
    return issues


def _check_branch(q: Question, earlier: Mapping[str, Question]) -> list[Issue]:
    assert q.show_if is not None
    target_id = q.show_if["question"]
    target = earlier.get(target_id)
    if target is None:
        return [Issue(f"{q.path}.show_if.question",
                      f"must name an earlier question; {target_id!r} is not one", target_id)]
    if target.type in ("text", "matrix"):
        return [Issue(f"{q.path}.show_if.question",
                      f"cannot branch on a {target.type} question", target_id)]
    key = "equals" if "equals" in q.show_if else "in"
    values: Sequence[Any] = [q.show_if["equals"]] if key == "equals" else q.show_if["in"]
    issues = []
    for i, value in enumerate(values):
        where = f"{q.path}.show_if.{key}" + ("" if key == "equals" else f"[{i}]")
        problem = check_value(target, value, whole=False)
        if problem:
            issues.append(Issue(where, f"{target_id!r} cannot be {value!r}: {problem}", value))
    return issues


def check_value(q: Question, value: Any, *, whole: bool = True) -> str | None:
    """Why ``value`` is not an answer to ``q`` (``None`` when it is one).

    ``whole=False`` checks one element (one choice of a multiple choice question).
    """
    if q.type in NUMERIC_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be a whole number from {q.low} to {q.high}"
        assert q.low is not None and q.high is not None
        if not q.low <= value <= q.high:
            return f"must be from {q.low} to {q.high}, got {value}"
        return None
    if q.type == "yes_no":
        return None if isinstance(value, bool) else "must be true or false"
    if q.type == "single_choice" or (q.type == "multiple_choice" and not whole):
        if not isinstance(value, str) or value not in q.choices:
            return f"must be one of {', '.join(map(repr, q.choices))}"
        return None
    if q.type == "multiple_choice":
        return _check_choices(q, value)
    if q.type == "text":
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty text"
        if len(value) > q.max_length:
            return f"is too long: {len(value)} characters, at most {q.max_length}"
        return None
    return _check_matrix(q, value)


def _check_choices(q: Question, value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of choices"
    unknown = [v for v in value if v not in q.choices]
    if unknown:
        return f"{unknown[0]!r} is not a choice; choices: {', '.join(map(repr, q.choices))}"
    if len(set(value)) != len(value):
        return "must not repeat a choice"
    top = q.max_choices if q.max_choices is not None else len(q.choices)
    if not max(q.min_choices, 1) <= len(value) <= top:
        return f"must pick from {max(q.min_choices, 1)} to {top} choices, got {len(value)}"
    return None


def _check_matrix(q: Question, value: Any) -> str | None:
    if not isinstance(value, dict) or not value:
        return "must be an object of row: column"
    for row, column in value.items():
        if row not in q.rows:
            return f"{row!r} is not a row; rows: {', '.join(map(repr, q.rows))}"
        if column not in q.columns:
            return (f"{column!r} (row {row!r}) is not a column; columns: "
                    f"{', '.join(map(repr, q.columns))}")
    return None
