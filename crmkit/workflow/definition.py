"""Workflow definitions: state machines as data, checked when they load.

Plugins register definitions through ``register_workflows``; integrators define, extend or
replace them in ``crmkit.toml`` under ``[workflows.<name>]`` (validated against
``schemas/workflow.schema.json``). Every definition is checked as it loads: a missing or
unknown initial state, transitions from or to unknown states, duplicate transition names,
final states with a way out, and states no path reaches are errors naming the workflow.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from crmkit.criteria import Criteria, FieldRegistry, parse_duration
from crmkit.errors import Issue, NotFound, ValidationError
from crmkit.schemas import compile_schema, issues_of, load_kernel_schema

__all__ = ["Timer", "Transition", "WorkflowDefinition", "WorkflowRegistry", "parse_definition"]


@attrs.frozen
class Timer:
    """Fire a transition automatically: ``after`` a duration in the source state, or ``at``
    the time stored under a key of the instance's data (``data.due_at``)."""

    after: dt.timedelta | None = None
    at_key: str | None = None

    def due(self, entered_at: dt.datetime, data: Mapping[str, Any]) -> dt.datetime | None:
        """When the timer fires for an instance that entered the state at ``entered_at``."""
        if self.after is not None:
            return entered_at + self.after
        raw = data.get(self.at_key or "")
        if isinstance(raw, str):
            try:
                when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                return None
            return when if when.tzinfo else None
        return None


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
                     {"after": str(t.timer.after)} if t.timer.after is not None
                     else {"at": f"data.{t.timer.at_key}"}),
                 "description": t.description}
                for t in self.transitions
            ],
        }


def _schema() -> Any:
    return compile_schema(load_kernel_schema("workflow"), "workflow.schema.json")


def parse_definition(name: str, raw: Mapping[str, Any], fields: FieldRegistry, *,
                     owner: str, base: WorkflowDefinition | None = None) -> WorkflowDefinition:
    """Build and check a definition from its document form (config or plugin).

    With ``base``, ``raw`` extends it: its states, finals and transitions are added.
    """
    context = f"workflow {name!r} ({owner})"
    issues = issues_of(_schema(), raw)
    if issues:
        raise ValidationError(issues, context=context)
    transitions = list(base.transitions) if base else []
    for i, t in enumerate(raw.get("transitions", [])):
        guard = None
        if "guard" in t:
            guard = fields.compile(t["guard"], context=f"transitions[{i}].guard")
        timer = None
        if "timer" in t:
            spec = t["timer"]
            timer = (Timer(after=parse_duration(spec["after"])) if "after" in spec
                     else Timer(at_key=spec["at"].removeprefix("data.")))
        sources = t["from"] if isinstance(t["from"], list) else [t["from"]]
        transitions.append(Transition(t["name"], tuple(sources), t["to"], guard, timer,
                                      t.get("description", "")))
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
        owner=owner if base is None else f"{base.owner}, extended by {owner}",
    )
    check(definition)
    return definition


def check(definition: WorkflowDefinition) -> None:
    """Raise :class:`ValidationError` naming every structural problem of ``definition``."""
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
    if issues:
        raise ValidationError(issues, context=f"workflow {d.name!r} ({d.owner})")


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
        """Define, extend or replace workflows from the config's ``[workflows.*]``."""
        for name, raw in workflows.items():
            mode = raw.get("mode", "define")
            existing = self.definitions.get(name)
            owner = f"config {source}"
            if mode == "extend":
                if existing is None:
                    raise ValidationError([Issue(f"workflows.{name}.mode",
                                                 "extends a workflow nobody defines")])
                self.definitions[name] = parse_definition(name, raw, fields, owner=owner,
                                                          base=existing)
                continue
            if mode == "define" and existing is not None:
                raise ValidationError([Issue(
                    f"workflows.{name}",
                    f"already defined by {existing.owner}; set mode = \"extend\" to add to it "
                    "or mode = \"replace\" to redefine it")])
            self.definitions[name] = parse_definition(name, raw, fields, owner=owner)

    def get(self, name: str) -> WorkflowDefinition:
        definition = self.definitions.get(name)
        if definition is None:
            known = ", ".join(sorted(self.definitions)) or "none"
            raise NotFound(f"no workflow named {name!r} (defined: {known})")
        return definition

    def all(self) -> list[WorkflowDefinition]:
        return sorted(self.definitions.values(), key=lambda d: d.name)
