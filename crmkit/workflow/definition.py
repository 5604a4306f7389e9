"""Workflow definitions: state machines as data, checked when they load.

Plugins register definitions through ``register_workflows``; integrators define, extend or
replace them in ``crmkit.toml`` under ``[workflows.<name>]`` (validated against
``schemas/workflow.schema.json``). Every definition is checked as it loads: a missing or
unknown initial state, transitions from or to unknown states, duplicate transition names,
final states with a way out, and states no path reaches are errors naming the workflow.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any

import attrs

from crmkit.criteria import Criteria, FieldRegistry, parse_duration
from crmkit.errors import ConfigError, Issue, NotFound, ValidationError, short_repr
from crmkit.schemas import compile_schema, issues_of, load_kernel_schema

__all__ = [
    "MAX_TIMER",
    "Timer",
    "Transition",
    "WorkflowDefinition",
    "WorkflowRegistry",
    "format_duration",
    "parse_definition",
    "parse_time",
]

#: The longest ``after`` a timer may wait: ten years. A longer one is a typo, and one beyond
#: year 9999 could not be stored at all.
MAX_TIMER = dt.timedelta(days=3660)
#: Workflow names, as config keys and as stored in ``workflow_instance.workflow``.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}")


def format_duration(delta: dt.timedelta) -> str:
    """``delta`` (whole hours) as the ISO 8601 duration a definition writes: ``P30D``,
    ``PT48H``, ``P1DT12H``."""
    hours = delta.seconds // 3600
    if delta.days and hours:
        return f"P{delta.days}DT{hours}H"
    return f"P{delta.days}D" if delta.days else f"PT{hours}H"


def parse_time(value: Any) -> dt.datetime | None:
    """An aware time from ISO 8601 text with an offset (``Z`` allowed), in UTC, between the
    years 1000 and 9998 (what every backend stores); ``None`` otherwise."""
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:
            return None
        when = when.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    return when if 1000 <= when.year <= 9998 else None



@attrs.frozen
class Timer:
    """Fire a transition automatically: ``after`` a duration in the source state, or ``at``
    the time stored under a key of the instance's data (``data.due_at``)."""

    after: dt.timedelta | None = None
    at_key: str | None = None

    def due(self, entered_at: dt.datetime, data: Mapping[str, Any]) -> dt.datetime | None:
        """When the timer fires for an instance that entered the state at ``entered_at``.

        An ``at`` timer whose key is missing from the data (or ``null``) is not armed; a
        value that is not an ISO 8601 time with an offset is a :class:`ValidationError`
        (an SLA that silently never fires is worse than a refused transition).
        """
        if self.after is not None:
            return entered_at + self.after
        key = self.at_key or ""
        raw = data.get(key)
        if raw is None:
            return None
        when = parse_time(raw)
        if when is None:
            raise ValidationError([Issue(
                f"data.{key}", "a timer fires at this time: it must be an ISO 8601 date-time "
                f"with an offset (2026-12-01T09:00:00+00:00) between the years 1000 and 9998, "
                f"got {short_repr(raw)}", raw)])
        return when


@attrs.frozen
class Transition:
    """A named move from one of ``sources`` to ``target``."""

    name: str
    sources: tuple[str, ...]
    target: str
    guard: Criteria | None = None
    timer: Timer | None = None
    description: str = ""


@attrs.frozen
class WorkflowDefinition:
    """A complete, checked state machine."""

    name: str
    subject: str
    initial: str
    states: tuple[str, ...]
    final: tuple[str, ...]
    transitions: tuple[Transition, ...]
    description: str = ""
    owner: str = "crmkit"

    def transition(self, name: str) -> Transition | None:
        return next((t for t in self.transitions if t.name == name), None)

    def available(self, state: str) -> list[Transition]:
        """The transitions that may fire from ``state``."""
        return [t for t in self.transitions if state in t.sources]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "subject": self.subject, "description": self.description,
            "owner": self.owner, "initial": self.initial, "states": list(self.states),
            "final": list(self.final),
            "transitions": [
                {"name": t.name, "from": list(t.sources), "to": t.target,
                 "guard": t.guard.document if t.guard else None,
                 "timer": None if t.timer is None else (
                     {"after": format_duration(t.timer.after)} if t.timer.after is not None
                     else {"at": f"data.{t.timer.at_key}"}),
                 "description": t.description}
                for t in self.transitions
            ],
        }


@functools.cache
def _schema() -> Any:
    return compile_schema(load_kernel_schema("workflow"), "workflow.schema.json")


def parse_definition(name: str, raw: Mapping[str, Any], fields: FieldRegistry, *,
                     owner: str, base: WorkflowDefinition | None = None) -> WorkflowDefinition:
    """Build and check a definition from its document form (config or plugin).

    With ``base``, ``raw`` extends it: its states, finals and transitions are added.
    Every problem is reported at once, in one :class:`ValidationError` naming the workflow.
    """
    shown_owner = owner if base is None else _extended(base, owner)
    context = f"workflow {short_repr(name)} ({shown_owner})"
    issues = issues_of(_schema(), raw)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        issues.insert(0, Issue("name", f"{short_repr(name)} is not a workflow name: lowercase "
                               "letters, digits and _, starting with a letter, at most 60"))
    if isinstance(raw, Mapping) and isinstance(raw.get("subject"), str) \
            and len(raw["subject"]) > 60:
        issues.append(Issue("subject", "is too long: at most 60 characters", raw["subject"]))
    if issues:
        raise ValidationError(issues, context=context)
    transitions = list(base.transitions) if base else []
    for i, t in enumerate(raw.get("transitions", [])):
        where = f"transitions[{i}] ({t['name']})"
        guard = None
        if "guard" in t:
            try:
                guard = fields.compile(t["guard"], context=f"{where}.guard")
            except ValidationError as exc:
                issues += exc.issues
        timer = None
        if "timer" in t:
            timer = _timer(t["timer"], where, issues)
        sources = t["from"] if isinstance(t["from"], list) else [t["from"]]
        transitions.append(Transition(t["name"], tuple(sources), t["to"], guard, timer,
                                      t.get("description", "")))
    if base is not None:
        for key in ("subject", "initial"):
            if key in raw and raw[key] != getattr(base, key):
                issues.append(Issue(key, f"an extension cannot change the {key} "
                                    f"({getattr(base, key)!r}); use mode = \"replace\""))
    states = list(base.states) if base else []
    states += [s for s in raw.get("states", []) if s not in states]
    final = list(base.final) if base else []
    final += [s for s in raw.get("final", []) if s not in final]
    definition = WorkflowDefinition(
        name=name,
        subject=raw.get("subject", base.subject if base else "customer"),
        initial=raw.get("initial", base.initial if base else ""),
        states=tuple(states),
        final=tuple(final),
        transitions=tuple(transitions),
        description=raw.get("description", base.description if base else ""),
        owner=owner if base is None else _extended(base, owner),
    )
    issues += problems(definition)
    if issues:
        raise ValidationError(issues, context=context)
    return definition


def _extended(base: WorkflowDefinition, owner: str) -> str:
    return f"{base.owner}, extended by {owner}"


def _timer(spec: Mapping[str, Any], where: str, issues: list[Issue]) -> Timer | None:
    if "at" in spec:
        return Timer(at_key=spec["at"].removeprefix("data."))
    text = spec["after"]
    try:
        after = parse_duration(text)
    except ValueError as exc:
        issues.append(Issue(f"{where}.timer.after", str(exc), text))
        return None
    except OverflowError:
        after = None
    if after is None or after > MAX_TIMER:
        issues.append(Issue(f"{where}.timer.after", f"{text!r} is longer than "
                            f"{MAX_TIMER.days} days", text))
        return None
    if after <= dt.timedelta(0):
        issues.append(Issue(f"{where}.timer.after", f"{text!r} is not a positive duration: "
                            "a timer fires some time after its state is entered", text))
        return None
    return Timer(after=after)


def check(definition: WorkflowDefinition) -> None:
    """Raise :class:`ValidationError` naming every structural problem of ``definition``."""
    issues = problems(definition)
    if issues:
        raise ValidationError(issues, context=f"workflow {definition.name!r} "
                              f"({definition.owner})")


def problems(definition: WorkflowDefinition) -> list[Issue]:
    """Every structural problem of ``definition`` (none: it may run)."""
    d, issues = definition, []
    states = set(d.states)
    if not d.initial:
        issues.append(Issue("initial", "no initial state"))
    elif d.initial not in states:
        issues.append(Issue("initial", f"initial state {d.initial!r} is not in states"))
    for state in d.final:
        if state not in states:
            issues.append(Issue("final", f"final state {state!r} is not in states"))
    seen: set[str] = set()
    for i, t in enumerate(d.transitions):
        where = f"transitions[{i}] ({t.name})"
        if t.name in seen:
            issues.append(Issue(where, f"duplicate transition name {t.name!r}"))
        seen.add(t.name)
        for source in t.sources:
            if source not in states:
                issues.append(Issue(where, f"from unknown state {source!r}"))
            elif source in d.final:
                issues.append(Issue(where, f"leaves final state {source!r}"))
        if t.target not in states:
            issues.append(Issue(where, f"to unknown state {t.target!r}"))
        if t.timer is not None and len(t.sources) == 0:
            issues.append(Issue(where, "a timer needs a source state"))
    if not issues:
        unreachable = states - _reachable(d)
        for state in sorted(unreachable):
            issues.append(Issue("states", f"state {state!r} cannot be reached from "
                                f"{d.initial!r}"))
    return issues


def _reachable(d: WorkflowDefinition) -> set[str]:
    seen, todo = {d.initial}, [d.initial]
    while todo:
        state = todo.pop()
        for t in d.available(state):
            if t.target not in seen:
                seen.add(t.target)
                todo.append(t.target)
    return seen


class WorkflowRegistry:
    """Every workflow of the deployment, by name."""

    def __init__(self) -> None:
        self.definitions: dict[str, WorkflowDefinition] = {}

    def add(self, definition: WorkflowDefinition) -> None:
        if definition.name in self.definitions:
            other = self.definitions[definition.name]
            raise ValidationError(
                [Issue(definition.name, f"already defined by {other.owner}")],
                context=f"workflow {definition.name!r} ({definition.owner})",
            )
        self.definitions[definition.name] = definition

    def apply_config(self, workflows: Mapping[str, Mapping[str, Any]], fields: FieldRegistry,
                     source: str) -> None:
        """Define, extend or replace workflows from the config's ``[workflows.*]``.

        A problem is a :class:`ConfigError` naming the file and the key
        (``workflows.<name>``); its message names the workflow and each problem's path.
        """
        for name, raw in workflows.items():
            key = f"workflows.{name}"
            try:
                self._apply_one(name, raw, fields, f"config {source}")
            except ValidationError as exc:
                raise ConfigError(str(exc), file=source, key=key) from None

    def _apply_one(self, name: str, raw: Mapping[str, Any], fields: FieldRegistry,
                   owner: str) -> None:
        mode = raw.get("mode", "define") if isinstance(raw, Mapping) else "define"
        existing = self.definitions.get(name)
        if mode in ("extend", "replace") and existing is None:
            known = ", ".join(sorted(self.definitions)) or "none"
            raise ValidationError([Issue("mode", f"{mode}s a workflow nobody defines "
                                         f"(defined: {known})")],
                                  context=f"workflow {name!r} ({owner})")
        if mode == "define" and existing is not None:
            raise ValidationError([Issue(
                "mode", f"already defined by {existing.owner}; set mode = \"extend\" to add "
                "to it or mode = \"replace\" to redefine it")],
                context=f"workflow {name!r} ({owner})")
        self.definitions[name] = parse_definition(
            name, raw, fields, owner=owner, base=existing if mode == "extend" else None)

    def get(self, name: str) -> WorkflowDefinition:
        definition = self.definitions.get(name)
        if definition is None:
            known = ", ".join(sorted(self.definitions)) or "none"
            raise NotFound(f"no workflow named {name!r} (defined: {known})")
        return definition

    def all(self) -> list[WorkflowDefinition]:
        return sorted(self.definitions.values(), key=lambda d: d.name)
