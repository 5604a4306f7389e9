"""Workflows: definitions (plugins and config), instances, guards, hooks, history, conflicts.

Definitions are checked without a database (a deployment is built but never connects);
everything that runs instances runs on SQLite, PostgreSQL and MariaDB through
``crm_factory``. Timers are in tests/test_workflow_timers.py, the model-based test in
tests/test_workflow_stateful.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from workflow_samples import ONBOARDING

from crmkit import Crm, hookimpl
from crmkit.criteria import CriteriaField, FieldRegistry, kernel_fields
from crmkit.errors import (
    ConfigError,
    Conflict,
    NotFound,
    PluginError,
    Rejected,
    ValidationError,
)
from crmkit.models import (
    AuditEntry,
    Customer,
    OutboxEvent,
    WorkflowInstance,
    WorkflowStep,
    WorkflowTimer,
)
from crmkit.testing import backend_name, make_config
from crmkit.workflow import WorkflowDefinition, parse_definition

# -- definitions used throughout ----------------------------------------------------------

#: A plugin's sales pipeline (registered through register_workflows).
SALES: dict[str, Any] = {
    "subject": "customer",
    "initial": "lead",
    "states": ["lead", "negotiation", "won", "lost"],
    "final": ["won", "lost"],
    "transitions": [
        {"name": "negotiate", "from": "lead", "to": "negotiation"},
        {"name": "close_won", "from": "negotiation", "to": "won"},
        {"name": "close_lost", "from": ["lead", "negotiation"], "to": "lost"},
    ],
}

#: Two ways out of "open", neither possible after the other.
FORK: dict[str, Any] = {
    "initial": "open", "states": ["open", "left", "right"], "final": ["left", "right"],
    "transitions": [{"name": "go_left", "from": "open", "to": "left"},
                    {"name": "go_right", "from": "open", "to": "right"}],
}

#: A plugin's own record type as the subject.
CLAIM: dict[str, Any] = {
    "subject": "warranty_claim",
    "initial": "received",
    "states": ["received", "triaged", "closed"],
    "final": ["closed"],
    "transitions": [
        {"name": "triage", "from": "received", "to": "triaged"},
        {"name": "close", "from": "triaged", "to": "closed",
         "guard": {"field": "customer.email", "op": "exists"}},
    ],
}


class WorkflowPlugin:
    """Registers workflow definitions, like a sales or warranty plugin would."""

    def __init__(self, **definitions: dict[str, Any]) -> None:
        self.definitions = definitions

    @hookimpl
    def register_workflows(self, register):
        for name, definition in self.definitions.items():
            register(name, copy.deepcopy(definition))


def deployment(tmp_path: Path, config: dict[str, Any] | None = None,
               plugins: dict[str, object] | None = None) -> Crm:
    """A deployment that is only built (definitions loaded), never connected."""
    return Crm(make_config(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path, config),
               plugins=plugins or {}, discover_plugins=False)


def parse(raw: dict[str, Any], name: str = "w") -> WorkflowDefinition:
    return parse_definition(name, raw, FieldRegistry(kernel_fields()), owner="test")


def with_changes(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(base)
    raw.update(changes)
    return raw


def transitions_of(d: WorkflowDefinition) -> list[tuple[str, tuple[str, ...], str]]:
    return [(t.name, t.sources, t.target) for t in d.transitions]


# -- loading definitions ----------------------------------------------------------------------


def test_a_plugins_definition_loads_with_its_owner(tmp_path):
    crm = deployment(tmp_path, plugins={"sales": WorkflowPlugin(sales_pipeline=SALES)})
    d = crm.workflows.get("sales_pipeline")
    assert (d.name, d.subject, d.initial, d.owner) == (
        "sales_pipeline", "customer", "lead", "plugin sales")
    assert d.states == ("lead", "negotiation", "won", "lost")
    assert d.final == ("won", "lost")
    assert transitions_of(d) == [
        ("negotiate", ("lead",), "negotiation"), ("close_won", ("negotiation",), "won"),
        ("close_lost", ("lead", "negotiation"), "lost"),
    ]
    assert [w.name for w in crm.workflows.all()] == ["sales_pipeline"]


def test_a_config_definition_loads_with_guard_and_timer(tmp_path):
    crm = deployment(tmp_path, {"workflows": {"onboarding": ONBOARDING}})
    d = crm.workflows.get("onboarding")
    assert d.owner == "config <defaults>"
    assert d.description == ONBOARDING["description"]
    qualify, go_cold = d.transition("qualify"), d.transition("go_cold")
    assert qualify.guard.document == {"field": "customer.email", "op": "exists"}
    assert go_cold.timer.after == dt.timedelta(days=30) and go_cold.timer.at_key is None
    assert [t.name for t in d.available("new")] == ["contact", "go_cold"]
    assert d.available("lost") == []
    shown = d.to_dict()
    assert shown["transitions"][2]["timer"] == {"after": "P30D"}
    assert shown["transitions"][1]["guard"] == {"field": "customer.email", "op": "exists"}
    with pytest.raises(NotFound, match=r"no workflow named 'onbording' \(defined: onboarding\)"):
        crm.workflows.get("onbording")


def test_config_extends_a_plugins_workflow(tmp_path):
    extension = {"mode": "extend", "states": ["legal_review"], "transitions": [
        {"name": "to_legal", "from": "negotiation", "to": "legal_review"},
        {"name": "cleared", "from": "legal_review", "to": "won"},
    ]}
    crm = deployment(tmp_path, {"workflows": {"sales_pipeline": extension}},
                     {"sales": WorkflowPlugin(sales_pipeline=SALES)})
    d = crm.workflows.get("sales_pipeline")
    assert d.states == ("lead", "negotiation", "won", "lost", "legal_review")
    assert [t.name for t in d.transitions] == [
        "negotiate", "close_won", "close_lost", "to_legal", "cleared"]
    assert (d.initial, d.final, d.subject) == ("lead", ("won", "lost"), "customer")
    assert d.owner == "plugin sales, extended by config <defaults>"


def test_config_replaces_a_plugins_workflow(tmp_path):
    replacement = {"mode": "replace", "initial": "open", "states": ["open", "done"],
                   "final": ["done"], "transitions": [{"name": "finish", "from": "open",
                                                       "to": "done"}]}
    crm = deployment(tmp_path, {"workflows": {"sales_pipeline": replacement}},
                     {"sales": WorkflowPlugin(sales_pipeline=SALES)})
    d = crm.workflows.get("sales_pipeline")
    assert (d.initial, d.states, d.final) == ("open", ("open", "done"), ("done",))
    assert transitions_of(d) == [("finish", ("open",), "done")]
    assert d.owner == "config <defaults>"


def test_config_defining_a_plugins_workflow_again_names_the_plugin(tmp_path):
    with pytest.raises(ConfigError) as caught:
        deployment(tmp_path, {"workflows": {"sales_pipeline": ONBOARDING}},
                   {"sales": WorkflowPlugin(sales_pipeline=SALES)})
    error = caught.value
    assert error.key == "workflows.sales_pipeline"
    assert "already defined by plugin sales" in str(error)
    assert 'mode = "extend"' in str(error) and 'mode = "replace"' in str(error)


@pytest.mark.parametrize("mode", ["extend", "replace"])
def test_config_changing_a_workflow_nobody_defines_fails(tmp_path, mode):
    with pytest.raises(ConfigError) as caught:
        deployment(tmp_path, {"workflows": {"sales_pipelin": {**SALES, "mode": mode}}},
                   {"sales": WorkflowPlugin(sales_pipeline=SALES)})
    assert caught.value.key == "workflows.sales_pipelin"
    assert f"{mode}s a workflow nobody defines (defined: sales_pipeline)" in str(caught.value)


def test_two_plugins_defining_one_workflow_name_the_second_and_the_first(tmp_path):
    with pytest.raises(PluginError) as caught:
        deployment(tmp_path, plugins={"alpha": WorkflowPlugin(pipeline=SALES),
                                      "beta": WorkflowPlugin(pipeline=SALES)})
    error = caught.value
    assert error.hook == "register_workflows"
    first = ({"alpha", "beta"} - {error.plugin}).pop()
    assert f"workflow 'pipeline' (plugin {error.plugin}): pipeline: already defined by " \
           f"plugin {first}" in str(error)


@pytest.mark.parametrize(("name", "shown"), [
    ("Sales Pipeline", "'Sales Pipeline'"), ("x" * 61, "'xxxxxxxx"), (7, "7")])
def test_a_plugin_workflow_name_must_be_a_name(tmp_path, name, shown):
    with pytest.raises(PluginError) as caught:
        deployment(tmp_path, plugins={"sales": _Named(name, SALES)})
    assert caught.value.plugin == "sales"
    assert f"name: {shown}" in str(caught.value)
    assert "is not a workflow name: lowercase letters, digits and _" in str(caught.value)


class _Named:
    """Registers one definition under any name (plugin names are not config keys)."""

    def __init__(self, name: object, definition: dict[str, Any]) -> None:
        self.name, self.definition = name, definition

    @hookimpl
    def register_workflows(self, register):
        register(self.name, copy.deepcopy(self.definition))


def test_a_subject_longer_than_the_column_is_refused():
    with pytest.raises(ValidationError, match="subject: is too long: at most 60 characters"):
        parse(with_changes(SALES, subject="s" * 61))


@pytest.mark.parametrize(("key", "value"), [("subject", "deal"), ("initial", "negotiation")])
def test_an_extension_cannot_change_subject_or_initial(tmp_path, key, value):
    extension = {"mode": "extend", key: value, "transitions": []}
    with pytest.raises(ConfigError) as caught:
        deployment(tmp_path, {"workflows": {"sales_pipeline": extension}},
                   {"sales": WorkflowPlugin(sales_pipeline=SALES)})
    assert f"{key}: an extension cannot change the {key} ({SALES[key]!r}); use mode = " \
           '"replace"' in str(caught.value)


def test_extending_keeps_the_check(tmp_path):
    extension = {"mode": "extend", "states": ["limbo"],
                 "transitions": [{"name": "negotiate", "from": "lead", "to": "won"}]}
    with pytest.raises(ConfigError) as caught:
        deployment(tmp_path, {"workflows": {"sales_pipeline": extension}},
                   {"sales": WorkflowPlugin(sales_pipeline=SALES)})
    message = str(caught.value)
    assert "workflow 'sales_pipeline' (plugin sales, extended by config" in message
    assert "duplicate transition name 'negotiate'" in message


# -- structural errors -------------------------------------------------------------------------


def _edit(**edits: Any):
    def apply(raw: dict[str, Any]) -> dict[str, Any]:
        for key, value in edits.items():
            if value is _DROP:
                raw.pop(key)
            else:
                raw[key] = value
        return raw
    return apply


def _edit_transition(index: int, **edits: Any):
    def apply(raw: dict[str, Any]) -> dict[str, Any]:
        raw["transitions"][index].update(edits)
        return raw
    return apply


def _add_transition(**transition: Any):
    def apply(raw: dict[str, Any]) -> dict[str, Any]:
        raw["transitions"].append(transition)
        return raw
    return apply


_DROP = object()

STRUCTURAL_ERRORS = {
    "unreachable state": (
        _edit(states=[*ONBOARDING["states"], "limbo"]),
        "states: state 'limbo' cannot be reached from 'new'"),
    "to an unknown state": (
        _edit_transition(3, to="activ"),
        "transitions[3] (win): to unknown state 'activ'"),
    "from an unknown state": (
        _edit_transition(2, **{"from": ["new", "contactd"]}),
        "transitions[2] (go_cold): from unknown state 'contactd'"),
    "duplicate transition name": (
        _add_transition(name="contact", **{"from": "contacted"}, to="lost"),
        "transitions[4] (contact): duplicate transition name 'contact'"),
    "missing initial state": (
        _edit(initial=_DROP), "initial: no initial state"),
    "unknown initial state": (
        _edit(initial="fresh"), "initial: initial state 'fresh' is not in states"),
    "unknown final state": (
        _edit(final=["active", "gone"]), "final: final state 'gone' is not in states"),
    "leaving a final state": (
        _add_transition(name="revive", **{"from": "lost"}, to="new"),
        "transitions[4] (revive): leaves final state 'lost'"),
    "guard with an unknown field": (
        _edit_transition(1, guard={"field": "customer.emial", "op": "exists"}),
        "transitions[1] (qualify).guard.field: unknown field 'customer.emial'; known: "),
    "guard with an operator the field does not take": (
        _edit_transition(1, guard={"field": "customer.name", "op": "lt", "value": "m"}),
        "transitions[1] (qualify).guard.op: 'lt' does not apply to customer.name"),
    "guard that is no criteria": (
        _edit_transition(1, guard={"field": "customer.email"}),
        "transitions[1] (qualify).guard: {'field': 'customer.email'} is not valid"),
    "zero timer duration": (
        _edit_transition(2, timer={"after": "P0D"}),
        "transitions[2] (go_cold).timer.after: 'P0D' is not a positive duration"),
    "enormous timer duration": (
        _edit_transition(2, timer={"after": "P99999999999D"}),
        "transitions[2] (go_cold).timer.after: 'P99999999999D' is longer than"),
}


@pytest.mark.parametrize("problem", STRUCTURAL_ERRORS)
def test_a_structural_error_names_the_workflow_and_the_place(problem):
    edit, expected = STRUCTURAL_ERRORS[problem]
    with pytest.raises(ValidationError) as caught:
        parse(edit(copy.deepcopy(ONBOARDING)), name="onboarding")
    message = str(caught.value)
    assert message.startswith("workflow 'onboarding' (test): "), message
    assert expected in message


@pytest.mark.parametrize("problem", ["unreachable state", "to an unknown state",
                                     "guard with an unknown field", "zero timer duration"])
def test_a_structural_error_in_config_is_a_config_error_naming_the_key(tmp_path, problem):
    edit, expected = STRUCTURAL_ERRORS[problem]
    raw = edit(copy.deepcopy(ONBOARDING))
    with pytest.raises(ConfigError) as caught:
        deployment(tmp_path, {"workflows": {"onboarding": raw}})
    assert caught.value.key == "workflows.onboarding"
    assert caught.value.file == "<defaults>"
    assert "workflow 'onboarding' (config <defaults>)" in str(caught.value)
    assert expected in str(caught.value)


@pytest.mark.parametrize("problem", ["from an unknown state", "guard with an unknown field",
                                     "enormous timer duration"])
def test_a_structural_error_in_a_plugin_names_the_plugin_and_the_workflow(tmp_path, problem):
    edit, expected = STRUCTURAL_ERRORS[problem]
    plugin = WorkflowPlugin(onboarding=edit(copy.deepcopy(ONBOARDING)))
    with pytest.raises(PluginError) as caught:
        deployment(tmp_path, plugins={"crm_onboarding": plugin})
    assert (caught.value.plugin, caught.value.hook) == ("crm_onboarding", "register_workflows")
    assert "workflow 'onboarding' (plugin crm_onboarding)" in str(caught.value)
    assert expected in str(caught.value)


def test_every_problem_is_reported_at_once():
    raw = _edit_transition(3, to="activ")(_edit(initial="fresh")(copy.deepcopy(ONBOARDING)))
    raw["transitions"][1]["guard"] = {"field": "customer.emial", "op": "exists"}
    with pytest.raises(ValidationError) as caught:
        parse(raw)
    paths = [issue.path for issue in caught.value.issues]
    assert paths == ["transitions[1] (qualify).guard.field", "initial", "transitions[3] (win)"]
    assert str(caught.value).startswith("workflow 'w' (test): 3 problems:")


SCHEMA_ERRORS = {
    "unknown key": (_edit(initail="new"), "<record>: unknown field 'initail'"),
    "no transitions": (_edit(transitions=_DROP), "missing required field 'transitions'"),
    "bad state name": (_edit(states=["new", "Contacted"]), "states[1]: 'Contacted' does not match"),
    "from of the wrong type": (_edit_transition(0, **{"from": 3}), "transitions[0].from: "),
    "transition without a target": (
        lambda raw: (raw["transitions"][0].pop("to"), raw)[1],
        "transitions[0]: missing required field 'to'"),
    "unknown transition key": (_edit_transition(0, when="now"),
                               "transitions[0]: unknown field 'when'"),
    "duration that is no duration": (
        _edit_transition(2, timer={"after": "30 days"}),
        "transitions[2].timer.after: '30 days' does not match the required pattern"),
    "timer at a key outside data": (
        _edit_transition(2, timer={"at": "due_at"}),
        "transitions[2].timer.at: 'due_at' does not match the required pattern"),
    "timer with both after and at": (
        _edit_transition(2, timer={"after": "P1D", "at": "data.due_at"}),
        "transitions[2].timer: "),
    "unknown mode": (_edit(mode="merge"), "mode: must be one of 'define', 'extend'"),
}


@pytest.mark.parametrize("problem", SCHEMA_ERRORS)
def test_schema_errors_name_the_path(problem):
    edit, expected = SCHEMA_ERRORS[problem]
    with pytest.raises(ValidationError) as caught:
        parse(edit(copy.deepcopy(ONBOARDING)))
    assert str(caught.value).startswith("workflow 'w' (test): ")
    assert expected in str(caught.value)


def test_a_schema_error_in_config_names_the_key(tmp_path):
    raw = _edit_transition(2, timer={"after": "30 days"})(copy.deepcopy(ONBOARDING))
    with pytest.raises(ConfigError) as caught:
        deployment(tmp_path, {"workflows": {"onboarding": raw}})
    assert caught.value.key == "workflows.onboarding"
    assert "transitions[2].timer.after: '30 days' does not match" in str(caught.value)


def test_a_definition_that_is_not_a_table_is_refused(tmp_path):
    with pytest.raises(ValidationError, match=r"workflow 'w' \(test\): <record>: must be of type"):
        parse_definition("w", ["new"], FieldRegistry(kernel_fields()), owner="test")  # type: ignore[arg-type]


# -- instances: helpers --------------------------------------------------------------------


class ProbeFields:
    """A criteria field that only SQL can evaluate: Python evaluation would raise."""

    @hookimpl
    def register_criteria_fields(self, register):
        def python(_record):
            raise AssertionError("the guard was evaluated in Python, not in SQL")
        register(CriteriaField(name="probe.lower_name", type="string",
                               sql=lambda: func.lower(Customer.name), get=python))


def make_crm(crm_factory, *, plugins: dict[str, object] | None = None,
             workflows: dict[str, Any] | None = None) -> Crm:
    return crm_factory(plugins={"claims": WorkflowPlugin(warranty=CLAIM), **(plugins or {})},
                       config={"workflows": {"onboarding": ONBOARDING, "fork": FORK,
                                             **(workflows or {})},
                               "events": {"dispatch": "worker"}})


def new_customer(crm: Crm, name: str = "Acme", **fields: Any) -> int:
    with crm.transaction(actor="alice") as tx:
        return tx.customers.create(kind="organization", name=name, **fields).id


def start(crm: Crm, customer_id: int, workflow: str = "onboarding", actor: str = "alice",
          **kwargs: Any) -> int:
    with crm.transaction(actor=actor) as tx:
        return tx.workflows.start(workflow, customer=customer_id, **kwargs).id


def fire(crm: Crm, instance_id: int, transition: str, actor: str = "alice", **kwargs: Any
         ) -> dict[str, Any]:
    with crm.transaction(actor=actor) as tx:
        return tx.workflows.fire(instance_id, transition, **kwargs).to_dict()


def stored(crm: Crm, instance_id: int) -> dict[str, Any]:
    with crm.session() as session:
        return session.get(WorkflowInstance, instance_id).to_dict()


def history(crm: Crm, instance_id: int) -> list[dict[str, Any]]:
    with crm.session() as session:
        return [s.to_dict() for s in session.scalars(
            select(WorkflowStep).where(WorkflowStep.instance_id == instance_id)
            .order_by(WorkflowStep.id))]


def path(crm: Crm, instance_id: int) -> list[tuple[str, str | None, str]]:
    return [(s["transition"], s["from"], s["to"]) for s in history(crm, instance_id)]


def timers(crm: Crm, instance_id: int) -> list[tuple[str, str]]:
    with crm.session() as session:
        return [(t.transition, t.status) for t in session.scalars(
            select(WorkflowTimer).where(WorkflowTimer.instance_id == instance_id)
            .order_by(WorkflowTimer.id))]


def audit(crm: Crm) -> list[dict[str, Any]]:
    with crm.session() as session:
        return [e.to_dict() for e in session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "workflow_instance")
            .order_by(AuditEntry.id))]


def events(crm: Crm, prefix: str = "workflow.") -> list[OutboxEvent]:
    with crm.session() as session:
        return list(session.scalars(select(OutboxEvent).where(OutboxEvent.name.startswith(
            prefix)).order_by(OutboxEvent.id)))


def snapshot(crm: Crm, instance_id: int) -> dict[str, Any]:
    """Everything a transition may write, for "nothing changed" checks."""
    with crm.session() as session:
        counts = {model.__tablename__: session.scalar(select(func.count()).select_from(model))
                  for model in (AuditEntry, OutboxEvent, WorkflowStep, WorkflowTimer)}
    return {"instance": stored(crm, instance_id), "history": history(crm, instance_id),
            "timers": timers(crm, instance_id), "counts": counts}


def is_valid_path(definition: WorkflowDefinition, steps: list[dict[str, Any]]) -> bool:
    """Whether ``steps`` is a start followed by transitions each allowed where it was taken."""
    if not steps or (steps[0]["transition"], steps[0]["from"], steps[0]["to"]) != (
            "start", None, definition.initial):
        return False
    state = definition.initial
    for step in steps[1:]:
        move = definition.transition(step["transition"])
        if move is None or step["from"] != state or state not in move.sources \
                or step["to"] != move.target:
            return False
        state = move.target
    return True


# -- instances: start -----------------------------------------------------------------------


def test_start_for_a_customer(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    with crm.transaction(actor="bob") as tx:
        instance = tx.workflows.start("onboarding", customer=tx.customers.get(customer),
                                      data={"source": "fair"})
        assert tx.workflows.find("onboarding", "customer", customer) is instance
    row = stored(crm, instance.id)
    assert {k: row[k] for k in ("workflow", "subject_type", "subject_id", "customer_id",
                                "state", "data", "closed_at", "version")} == {
        "workflow": "onboarding", "subject_type": "customer", "subject_id": str(customer),
        "customer_id": customer, "state": "new", "data": {"source": "fair"},
        "closed_at": None, "version": 1}
    assert row["started_at"] == row["state_entered_at"] == row["updated_at"]
    [step] = history(crm, instance.id)
    assert (step["transition"], step["from"], step["to"], step["actor"], step["data"]) == (
        "start", None, "new", "bob", {"source": "fair"})
    assert [(a["actor"], a["entity_id"], a["action"], a["changes"]) for a in audit(crm)] == [
        ("bob", str(instance.id), "start",
         {"after": {"workflow": "onboarding", "state": "new",
                    "subject": f"customer:{customer}"}})]
    [event] = events(crm)
    assert (event.name, event.actor) == ("workflow.started", "bob")
    assert event.payload == {
        "instance_id": instance.id, "workflow": "onboarding", "subject_type": "customer",
        "subject_id": str(customer), "customer_id": customer, "transition": "start",
        "from": None, "to": "new", "data": {"source": "fair"}}


def test_start_for_a_plugins_record(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    with crm.transaction() as tx:
        instance = tx.workflows.start("warranty", subject_type="warranty_claim", subject_id=42,
                                      customer=customer)
    row = stored(crm, instance.id)
    assert (row["subject_type"], row["subject_id"], row["customer_id"], row["state"]) == (
        "warranty_claim", "42", customer, "received")
    with crm.transaction() as tx:  # the same record id in another workflow type is another run
        assert tx.workflows.find("warranty", "warranty_claim", "42").id == instance.id
        assert tx.workflows.find("warranty", "customer", customer) is None


def test_start_for_a_customer_given_as_subject_links_the_customer(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm, email="a@example.com")
    with crm.transaction() as tx:
        instance = tx.workflows.start("onboarding", subject_type="customer",
                                      subject_id=customer)
    assert stored(crm, instance.id)["customer_id"] == customer
    fire(crm, instance.id, "contact")
    fire(crm, instance.id, "qualify")  # the guard sees the customer
    assert stored(crm, instance.id)["state"] == "qualified"


BAD_STARTS: dict[str, tuple[dict[str, Any], str]] = {
    "wrong subject type": (
        {"workflow": "warranty"}, "workflow 'warranty' is for warranty_claim, not customer"),
    "plugin subject for a customer workflow": (
        {"subject_type": "warranty_claim", "subject_id": 1},
        "workflow 'onboarding' is for customer, not warranty_claim"),
    "empty subject id": (
        {"workflow": "warranty", "subject_type": "warranty_claim", "subject_id": ""},
        "subject_id: must be given, as text or an integer of 1 to 100 characters, got ''"),
    "long subject id": (
        {"workflow": "warranty", "subject_type": "warranty_claim", "subject_id": "x" * 101},
        "subject_id: must be given, as text or an integer of 1 to 100 characters, got 'xxx"),
    "subject id of another type": (
        {"workflow": "warranty", "subject_type": "warranty_claim", "subject_id": 1.5},
        "subject_id: must be given, as text or an integer of 1 to 100 characters, got 1.5"),
    "customer subject that is another customer": (
        {"subject_type": "customer", "subject_id": 999_999},
        "subject_id: a customer subject is the customer itself: give customer=999999"),
    "no subject": ({"customer": None}, "subject: give a customer or a subject"),
    "unknown customer": ({"customer": 999_999}, "no customer with id 999999"),
    "unknown workflow": ({"workflow": "nope"}, "no workflow named 'nope'"),
    "data that is not JSON": (
        {"data": {"when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}},
        "data.when: must be JSON (text, numbers, booleans, null, lists, tables)"),
    "data that is not a table": ({"data": ["a"]}, "data: must be a table of values, got list"),
    "customer as text": ({"customer": "1"}, "customer: must be a customer or its integer id"),
}


def test_start_refuses_bad_input_and_writes_nothing(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    for case, (kwargs, message) in BAD_STARTS.items():
        arguments = {"workflow": "onboarding", "customer": customer, **kwargs}
        with pytest.raises((ValidationError, NotFound)) as caught, crm.transaction() as tx:
            tx.workflows.start(arguments.pop("workflow"), **arguments)
        assert message in str(caught.value), case
    with crm.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkflowInstance)) == 0


def test_starting_twice_is_a_conflict(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    first = start(crm, customer)
    with pytest.raises(Conflict, match=f"workflow 'onboarding' is already running for "
                                       f"customer {customer}"):
        start(crm, customer)
    # Also when both starts are in one transaction.
    other = new_customer(crm, "Other")
    with pytest.raises(Conflict, match="already running"), crm.transaction() as tx:
        tx.workflows.start("onboarding", customer=other)
        tx.workflows.start("onboarding", customer=other)
    with crm.session() as session:
        assert session.scalars(select(WorkflowInstance.id)).all() == [first]
    # Another workflow for the same customer is fine.
    start(crm, customer, "warranty", subject_type="warranty_claim", subject_id=customer)


def test_an_initial_state_that_is_final_closes_at_once(crm_factory):
    crm = make_crm(crm_factory, workflows={"note": {
        "initial": "done", "states": ["done"], "final": ["done"], "transitions": []}})
    instance = start(crm, new_customer(crm), "note")
    row = stored(crm, instance)
    assert row["state"] == "done" and row["closed_at"] == row["started_at"]


# -- instances: transitions -------------------------------------------------------------


def test_fire_along_allowed_transitions_to_a_final_state(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm, email="buyer@acme.example")
    instance = start(crm, customer)
    contact = fire(crm, instance, "contact", actor="bob", data={"note": "called"})
    assert (contact["transition"], contact["from"], contact["to"], contact["actor"],
            contact["data"]) == ("contact", "new", "contacted", "bob", {"note": "called"})
    fire(crm, instance, "qualify", actor="carol")
    row = stored(crm, instance)
    assert (row["state"], row["closed_at"], row["version"]) == ("qualified", None, 3)
    win = fire(crm, instance, "win", actor="dave", data={"amount": 100})
    row = stored(crm, instance)
    assert row["state"] == "active" and row["version"] == 4
    assert row["closed_at"] == row["state_entered_at"] == row["updated_at"] == win["at"]
    assert path(crm, instance) == [("start", None, "new"), ("contact", "new", "contacted"),
                                   ("qualify", "contacted", "qualified"),
                                   ("win", "qualified", "active")]
    steps = history(crm, instance)
    assert [s["actor"] for s in steps] == ["alice", "bob", "carol", "dave"]
    assert [s["data"] for s in steps] == [{}, {"note": "called"}, {}, {"amount": 100}]
    times = [dt.datetime.fromisoformat(s["at"]) for s in steps]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    with crm.transaction() as tx:  # the repository's history is the same, oldest first
        assert [s.to_dict() for s in tx.workflows.history(instance)] == steps
        assert [s.id for s in tx.workflows.history(tx.workflows.get(instance))] == [
            s["id"] for s in steps]

    # A final state is left by nothing.
    with pytest.raises(Rejected, match=r"state 'active'; 'go_cold' needs 'new' or 'contacted' "
                                       r"\(allowed now: nothing \(final\)\)"):
        fire(crm, instance, "go_cold")


def test_audit_and_events_of_transitions(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    instance = start(crm, customer)
    step = fire(crm, instance, "contact", actor="bob", data={"note": "called"})
    transitions = [a for a in audit(crm) if a["action"] == "transition"]
    assert [(a["actor"], a["entity_id"], a["changes"]) for a in transitions] == [
        ("bob", str(instance), {"before": {"state": "new"}, "after": {"state": "contacted"},
                                "transition": "contact"})]
    assert [e.name for e in events(crm)] == ["workflow.started", "workflow.transitioned"]
    event = events(crm)[-1]
    assert event.actor == "bob"
    assert event.payload == {
        "instance_id": instance, "workflow": "onboarding", "subject_type": "customer",
        "subject_id": str(customer), "customer_id": customer, "transition": "contact",
        "from": "new", "to": "contacted", "data": {"note": "called"}}
    assert step["data"] == event.payload["data"]


def test_a_transition_not_allowed_here_is_rejected_naming_the_allowed_ones(crm_factory):
    crm = make_crm(crm_factory)
    instance = start(crm, new_customer(crm))
    before = snapshot(crm, instance)
    with pytest.raises(Rejected) as caught:
        fire(crm, instance, "win")
    assert str(caught.value) == (
        f"onboarding instance {instance} is in state 'new'; 'win' needs 'qualified' "
        "(allowed now: contact, go_cold)")
    assert snapshot(crm, instance) == before


def test_an_unknown_transition_is_a_validation_error(crm_factory):
    crm = make_crm(crm_factory)
    instance = start(crm, new_customer(crm))
    before = snapshot(crm, instance)
    with pytest.raises(ValidationError) as caught:
        fire(crm, instance, "teleport")
    assert str(caught.value) == (
        "transition: workflow 'onboarding' has no transition 'teleport'; from 'new' it "
        "allows: contact, go_cold")
    assert snapshot(crm, instance) == before


def test_fire_on_a_missing_instance(crm_factory):
    crm = make_crm(crm_factory)
    for instance_id, error, message in [
        (999_999, NotFound, "no workflow instance with id 999999"),
        ("1", ValidationError, "id: must be a positive integer, got '1'"),
        (0, ValidationError, "id: must be a positive integer, got 0"),
        (True, ValidationError, "id: must be a positive integer, got True"),
    ]:
        with pytest.raises(error) as caught, crm.transaction() as tx:
            tx.workflows.fire(instance_id, "contact")
        assert str(caught.value) == message


def test_transition_data_must_be_json(crm_factory):
    crm = make_crm(crm_factory)
    instance = start(crm, new_customer(crm))
    before = snapshot(crm, instance)
    with pytest.raises(ValidationError, match="data.note: must be JSON"):
        fire(crm, instance, "contact", data={"note": {1, 2}})
    with pytest.raises(ValidationError, match="data: must be a table of values, got str"):
        fire(crm, instance, "contact", data="called")
    assert snapshot(crm, instance) == before


def test_data_merges_into_the_instance(crm_factory):
    crm = make_crm(crm_factory)
    instance = start(crm, new_customer(crm), data={"source": "fair", "score": 1})
    fire(crm, instance, "contact", data={"score": 5, "note": "called"})
    assert stored(crm, instance)["data"] == {"source": "fair", "score": 5, "note": "called"}
    assert history(crm, instance)[-1]["data"] == {"score": 5, "note": "called"}
    fire(crm, instance, "go_cold")
    assert stored(crm, instance)["data"] == {"source": "fair", "score": 5, "note": "called"}


# -- guards ----------------------------------------------------------------------------------


def test_a_guard_refuses_until_the_customer_meets_it(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    instance = start(crm, customer)
    fire(crm, instance, "contact")
    before = snapshot(crm, instance)
    with pytest.raises(Rejected) as caught:
        fire(crm, instance, "qualify")
    assert str(caught.value) == (
        f"the guard of 'qualify' is not met by customer {customer}: "
        "{'field': 'customer.email', 'op': 'exists'}")
    assert snapshot(crm, instance) == before

    with crm.transaction() as tx:
        tx.customers.update(customer, email="buyer@acme.example")
    fire(crm, instance, "qualify")
    assert stored(crm, instance)["state"] == "qualified"


def test_a_guard_sees_changes_made_earlier_in_the_same_transaction(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    instance = start(crm, customer)
    fire(crm, instance, "contact")
    with crm.transaction() as tx:
        tx.customers.update(customer, email="buyer@acme.example")
        tx.workflows.fire(instance, "qualify")
    assert stored(crm, instance)["state"] == "qualified"


def test_a_guard_is_evaluated_in_sql(crm_factory):
    guarded = {"initial": "open", "states": ["open", "done"], "final": ["done"],
               "transitions": [{"name": "finish", "from": "open", "to": "done",
                                "guard": {"field": "probe.lower_name", "op": "eq",
                                          "value": "acme"}}]}
    crm = make_crm(crm_factory, plugins={"probe": ProbeFields()},
                   workflows={"guarded": guarded})
    acme, other = new_customer(crm, "ACME"), new_customer(crm, "Other")
    refused = start(crm, other, "guarded")
    with pytest.raises(Rejected, match="the guard of 'finish' is not met"):
        fire(crm, refused, "finish")
    allowed = start(crm, acme, "guarded")
    fire(crm, allowed, "finish")
    assert stored(crm, allowed)["state"] == "done"


def test_a_guard_on_a_subject_without_customer_is_refused(crm_factory):
    crm = make_crm(crm_factory)
    with crm.transaction() as tx:
        instance = tx.workflows.start("warranty", subject_type="warranty_claim",
                                      subject_id="C-1").id
    fire(crm, instance, "triage")
    with pytest.raises(Rejected, match="'close' has a guard but the instance belongs to no "
                                       "customer"):
        fire(crm, instance, "close")


# -- plugin hooks ----------------------------------------------------------------------------


class Veto:
    """Vetoes ``transition`` while ``armed``; records what it saw and may add data."""

    def __init__(self, transition: str, reason: str = "the credit check failed") -> None:
        self.transition, self.reason = transition, reason
        self.armed = True
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    @hookimpl
    def before_transition(self, tx, instance, transition, data):
        self.seen.append((instance.state, transition.name, dict(data)))
        if transition.name != self.transition:
            return
        if self.armed:
            # What a plugin wrote before vetoing goes with the rolled-back transaction.
            tx.audit("veto", instance.id, "note", {"after": {"vetoed": transition.name}})
            raise Rejected(self.reason)
        data["checked_by"] = "veto"


def test_before_transition_veto_reaches_the_caller_and_nothing_changes(crm_factory):
    veto = Veto("win")
    crm = make_crm(crm_factory, plugins={"credit": veto})
    instance = start(crm, new_customer(crm, email="a@example.com"))
    fire(crm, instance, "contact")
    fire(crm, instance, "qualify")
    before = snapshot(crm, instance)
    with pytest.raises(Rejected) as caught:
        fire(crm, instance, "win", data={"amount": 10})
    assert caught.value.reason == "the credit check failed"
    assert (caught.value.plugin, caught.value.hook) == ("credit", "before_transition")
    assert snapshot(crm, instance) == before
    assert veto.seen[-1] == ("qualified", "win", {"amount": 10})

    veto.armed = False  # the plugin's changes to data are stored
    fire(crm, instance, "win", data={"amount": 10})
    assert history(crm, instance)[-1]["data"] == {"amount": 10, "checked_by": "veto"}
    assert stored(crm, instance)["data"] == {"amount": 10, "checked_by": "veto"}


def test_before_transition_runs_after_the_guard(crm_factory):
    veto = Veto("qualify")
    crm = make_crm(crm_factory, plugins={"credit": veto})
    instance = start(crm, new_customer(crm))
    fire(crm, instance, "contact")
    with pytest.raises(Rejected, match="guard"):
        fire(crm, instance, "qualify")
    assert [name for _, name, _ in veto.seen] == ["contact"]


class Follower:
    """``workflow_transitioned``: writes in the same transaction, or raises."""

    def __init__(self) -> None:
        self.fail = False
        self.seen: list[tuple[str, str, int | None]] = []

    @hookimpl
    def workflow_transitioned(self, tx, instance, step):
        self.seen.append((instance.state, step.transition, step.id))
        tx.interactions.log(instance.customer_id, channel="system", kind="note",
                            summary=f"{step.transition}: {step.from_state} -> {step.to_state}")
        if self.fail:
            raise RuntimeError("mail server down")


def test_workflow_transitioned_runs_in_the_same_transaction(crm_factory, crmkit_recorder):
    follower = Follower()
    crm = make_crm(crm_factory, plugins={"follower": follower})
    customer = new_customer(crm)
    instance = start(crm, customer)
    assert follower.seen == []  # starting is not a transition
    step = fire(crm, instance, "contact")
    assert follower.seen == [("contacted", "contact", step["id"])]
    with crm.transaction() as tx:
        [note] = tx.interactions.timeline(customer)
        assert note.summary == "contact: new -> contacted"
    [call] = crmkit_recorder.calls("workflow_transitioned")
    assert call.step.transition == "contact"

    follower.fail = True
    before = snapshot(crm, instance)
    with pytest.raises(PluginError) as caught:
        fire(crm, instance, "go_cold")
    assert (caught.value.plugin, caught.value.hook) == ("follower", "workflow_transitioned")
    assert "RuntimeError: mail server down" in str(caught.value)
    assert snapshot(crm, instance) == before
    with crm.transaction() as tx:
        assert len(tx.interactions.timeline(customer)) == 1


# -- versions and stale objects ----------------------------------------------------------------


def test_expected_version(crm_factory):
    crm = make_crm(crm_factory)
    instance = start(crm, new_customer(crm))
    before = snapshot(crm, instance)
    with pytest.raises(Conflict) as caught:
        fire(crm, instance, "contact", expected_version=2)
    assert str(caught.value) == (
        f"workflow instance {instance} moved on (version 1, you had 2); reload and retry")
    assert snapshot(crm, instance) == before
    fire(crm, instance, "contact", expected_version=1)
    with pytest.raises(Conflict, match="moved on"):
        fire(crm, instance, "go_cold", expected_version=1)
    fire(crm, instance, "go_cold", expected_version=2)
    assert path(crm, instance)[-1] == ("go_cold", "contacted", "lost")


def test_an_instance_read_in_an_earlier_transaction_is_written(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    with crm.transaction() as tx:
        instance = tx.workflows.start("onboarding", customer=customer)
    with crm.transaction(actor="bob") as tx:
        step = tx.workflows.fire(instance, "contact")
        assert step.from_state == "new"
    assert stored(crm, instance.id)["state"] == "contacted"
    assert path(crm, instance.id)[-1] == ("contact", "new", "contacted")

    # The copy is now stale: firing from it is a conflict, not a transition from "new".
    with pytest.raises(Conflict, match="moved on"), crm.transaction() as tx:
        tx.workflows.fire(instance, "go_cold")
    assert stored(crm, instance.id)["state"] == "contacted"


def test_an_instance_in_a_state_the_definition_dropped(crm_factory):
    crm = make_crm(crm_factory)
    instance = start(crm, new_customer(crm))
    fire(crm, instance, "contact")
    slimmer = {"initial": "new", "states": ["new", "lost"], "final": ["lost"],
               "transitions": [{"name": "go_cold", "from": "new", "to": "lost"}]}
    changed = make_crm(crm_factory, workflows={"onboarding": slimmer})  # the config changed
    with pytest.raises(Rejected) as caught:
        fire(changed, instance, "go_cold")
    assert str(caught.value) == (
        f"onboarding instance {instance} is in state 'contacted'; 'go_cold' needs 'new' "
        "(allowed now: nothing: the definition no longer has state 'contacted')")


def test_listing_instances(crm_factory):
    crm = make_crm(crm_factory)
    customers = [new_customer(crm, f"C{i}") for i in range(3)]
    ids = [start(crm, c) for c in customers]
    fire(crm, ids[1], "contact")
    with crm.transaction() as tx:
        assert [i.id for i in tx.workflows.list(workflow="onboarding").items] == ids
        assert [i.id for i in tx.workflows.list(state="contacted").items] == [ids[1]]
        assert [i.id for i in tx.workflows.list(customer_id=customers[2]).items] == [ids[2]]
        page = tx.workflows.list(limit=2)
        assert [i.id for i in page.items] == ids[:2] and page.next_after == ids[1]
        assert [i.id for i in tx.workflows.list(after=page.next_after).items] == ids[2:]
        with pytest.raises(ValidationError, match="limit: must be between 1 and"):
            tx.workflows.list(limit=0)


# -- concurrency ------------------------------------------------------------------------------


def _race(crm_factory, instance: int, transitions: tuple[str, str], concurrent: bool
          ) -> list[object]:
    """Fire ``transitions`` on ``instance`` at once from two deployments (two threads)."""
    crms = [make_crm(crm_factory) for _ in transitions]
    read = threading.Barrier(len(transitions), timeout=30)
    outcomes: list[object] = [None] * len(transitions)

    def run(index: int) -> None:
        try:
            if not concurrent:  # SQLite: writers queue on BEGIN IMMEDIATE, start together
                read.wait()
            with crms[index].transaction(actor=f"user{index}") as tx:
                current = tx.workflows.get(instance)
                if concurrent:  # both have read version 1 before either writes
                    assert current.state == "open"
                    read.wait()
                tx.workflows.fire(current, transitions[index])
            outcomes[index] = "ok"
        except Exception as exc:  # noqa: BLE001 - the outcome is the test's subject
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(transitions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_two_concurrent_transitions_one_wins_the_other_conflicts(crm_factory, crmkit_database_url):
    crm = make_crm(crm_factory)
    definition = crm.workflows.get("fork")
    concurrent = backend_name(crmkit_database_url) != "sqlite"
    moves = ("go_left", "go_right")
    for round_ in range(3):
        instance = start(crm, new_customer(crm, f"C{round_}"), "fork")
        outcomes = _race(crm_factory, instance, moves, concurrent)
        winners = [i for i, o in enumerate(outcomes) if o == "ok"]
        losers = [o for o in outcomes if o != "ok"]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        [loser] = losers
        won = moves[winners[0]]
        target = won.removeprefix("go_")
        if concurrent:
            assert isinstance(loser, Conflict), repr(loser)
            assert str(loser) == (f"workflow instance {instance} was moved by a concurrent "
                                  "transaction; nothing was written, reload and retry")
        else:  # the second writer ran after the first committed and saw the new state
            assert isinstance(loser, Rejected), repr(loser)
            assert f"is in state {target!r}; " in str(loser)
        steps = history(crm, instance)
        assert is_valid_path(definition, steps)
        assert path(crm, instance) == [("start", None, "open"), (won, "open", target)]
        assert steps[-1]["actor"] == f"user{winners[0]}"
        row = stored(crm, instance)
        assert row["version"] == 2 and row["state"] == target
        assert [e.payload["transition"] for e in events(crm)
                if e.payload["instance_id"] == instance] == ["start", won]


def test_concurrent_starts_of_one_workflow_for_one_subject(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)
    crms = [make_crm(crm_factory) for _ in range(2)]
    gate = threading.Barrier(2, timeout=30)
    outcomes: list[object] = [None, None]

    def run(index: int) -> None:
        try:
            gate.wait()
            with crms[index].transaction() as tx:
                tx.workflows.start("onboarding", customer=customer)
            outcomes[index] = "ok"
        except Exception as exc:  # noqa: BLE001
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(map(str, outcomes)).count("ok") == 1, outcomes
    [loser] = [o for o in outcomes if o != "ok"]
    assert isinstance(loser, Conflict), repr(loser)
    with crm.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkflowInstance)) == 1
        assert session.scalar(select(func.count()).select_from(WorkflowStep)) == 1
