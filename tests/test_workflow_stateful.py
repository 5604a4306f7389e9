"""A model-based test of the workflow engine (Hypothesis stateful testing).

Random starts, random transitions (allowed or not, guarded or not) and timer ticks run
against the database and against a small Python model of the state machine. After every
step the stored state, history and pending timers must be what the model says, and the
history must be a path the definition allows from its initial state.

Time: user actions happen at the clock's time (their timestamps are read back from what
the engine returns); ticks move a fake ``now`` forward and hand it to ``fire_due_timers``.
Each example starts on emptied tables of the test's database; the whole test runs on every
backend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, inspect, select

from crmkit import Crm
from crmkit.db import Base, utcnow
from crmkit.errors import Conflict, Rejected, ValidationError
from crmkit.models import WorkflowInstance, WorkflowStep, WorkflowTimer
from crmkit.workflow import TimerResult, WorkflowDefinition, fire_due_timers

#: A document review with every kind of transition: by hand, guarded, by an ``after``
#: timer (one guarded, one re-arming itself), by an ``at`` timer from the data (one back to
#: its own state).
REVIEW: dict[str, Any] = {
    "initial": "draft",
    "states": ["draft", "review", "approved", "rejected", "archived"],
    "final": ["archived"],
    "transitions": [
        {"name": "submit", "from": "draft", "to": "review"},
        {"name": "escalate", "from": "draft", "to": "review", "timer": {"after": "PT12H"},
         "guard": {"field": "customer.email", "op": "exists"}},
        {"name": "approve", "from": "review", "to": "approved",
         "guard": {"field": "customer.email", "op": "exists"}},
        {"name": "reject", "from": "review", "to": "rejected"},
        {"name": "expire", "from": "review", "to": "rejected", "timer": {"after": "P3D"}},
        {"name": "lapse", "from": "review", "to": "rejected", "timer": {"at": "data.due_at"}},
        {"name": "remind", "from": "approved", "to": "approved", "timer": {"after": "P1D"}},
        {"name": "nag", "from": "approved", "to": "approved", "timer": {"at": "data.due_at"}},
        {"name": "revise", "from": ["approved", "rejected"], "to": "draft"},
        {"name": "archive", "from": "rejected", "to": "archived", "timer": {"after": "P2D"}},
    ],
}
NAMES = [t["name"] for t in REVIEW["transitions"]]
#: Customers of each example: the first two have an e-mail (the guards pass), the others not.
CUSTOMERS = 4


@attrs.define
class Expected:
    """The model of one instance."""

    state: str
    has_email: bool
    path: list[tuple[str, str | None, str]]
    data: dict[str, Any]
    #: transition → when it is due
    pending: dict[str, dt.datetime] = attrs.Factory(dict)
    fired: int = 0
    failed: int = 0


class WorkflowMachine(RuleBasedStateMachine):
    instances = Bundle("instances")

    def __init__(self, crm: Crm) -> None:
        super().__init__()
        self.crm = crm
        self.definition: WorkflowDefinition = crm.workflows.get("review")
        self.order = {t.name: i for i, t in enumerate(self.definition.transitions)}
        self.model: dict[int, Expected] = {}
        self.by_customer: dict[int, int] = {}
        self.customers: list[tuple[int, bool]] = []
        self.now = utcnow()

    # -- the model ----------------------------------------------------------------------------

    def arm(self, expected: Expected, entered_at: dt.datetime, taken: str | None = None
            ) -> None:
        """The timers of the state ``expected`` just entered by ``taken`` at ``entered_at``:
        ``after`` timers from then, ``at`` timers at ``data.due_at`` (if there is one, and
        not a time that has come for the ``at`` timer that was just taken)."""
        expected.pending = {}
        for move in self.definition.available(expected.state):
            if move.timer is None:
                continue
            if move.timer.after is not None:
                expected.pending[move.name] = entered_at + move.timer.after
            elif expected.data.get("due_at") is not None:
                due = dt.datetime.fromisoformat(expected.data["due_at"])
                if move.name != taken or due > entered_at:
                    expected.pending[move.name] = due

    def take(self, expected: Expected, name: str, entered_at: dt.datetime,
             data: dict[str, Any]) -> None:
        move = self.definition.transition(name)
        expected.path.append((name, expected.state, move.target))
        expected.state = move.target
        expected.data.update(data)
        self.arm(expected, entered_at, taken=name)

    def guard_passes(self, expected: Expected, name: str) -> bool:
        return self.definition.transition(name).guard is None or expected.has_email

    # -- rules --------------------------------------------------------------------------------

    @initialize()
    def fresh_tables_and_customers(self) -> None:
        with self.crm.session() as session, session.begin():
            # Only the tables this database has: installed plugins add models to Base.
            existing = set(inspect(session.connection()).get_table_names())
            for table in reversed(Base.metadata.sorted_tables):
                if table.name in existing:
                    session.execute(delete(table))
        with self.crm.transaction(actor="setup") as tx:
            for i in range(CUSTOMERS):
                email = f"c{i}@example.com" if i < 2 else None
                customer = tx.customers.create(kind="person", name=f"C{i}", email=email)
                self.customers.append((customer.id, email is not None))

    @rule(target=instances, customer=st.integers(0, CUSTOMERS - 1),
          due_in=st.sampled_from([None, 2, 30, 100]))
    def start(self, customer: int, due_in: int | None):
        customer_id, has_email = self.customers[customer]
        data = {} if due_in is None else {"due_at": self.due(due_in)}
        if customer_id in self.by_customer:
            try:
                with self.crm.transaction(actor="user") as tx:
                    tx.workflows.start("review", customer=customer_id, data=data)
            except Conflict as exc:
                assert "already running" in str(exc)
                return multiple()
            raise AssertionError("a second start for one subject was allowed")
        with self.crm.transaction(actor="user") as tx:
            instance = tx.workflows.start("review", customer=customer_id, data=data)
        expected = Expected(self.definition.initial, has_email,
                            [("start", None, self.definition.initial)], dict(data))
        self.arm(expected, instance.state_entered_at)
        self.model[instance.id] = expected
        self.by_customer[customer_id] = instance.id
        return instance.id

    @rule(instance=instances, name=st.sampled_from([*NAMES, "teleport"]),
          due_in=st.sampled_from([None, 1, 50]))
    def fire(self, instance: int, name: str, due_in: int | None) -> None:
        self.attempt(instance, name, due_in)

    @precondition(lambda self: self.model)
    @rule(choice=st.data())
    def fire_one_that_leaves_the_state(self, choice: st.DataObject) -> None:
        """Most random names are not allowed where an instance is: also pick allowed ones."""
        instance = choice.draw(st.sampled_from(sorted(self.model)), label="instance")
        names = [t.name for t in self.definition.available(self.model[instance].state)]
        if names:
            self.attempt(instance, choice.draw(st.sampled_from(names), label="transition"),
                         choice.draw(st.sampled_from([None, 1, 50]), label="due_in"))

    def attempt(self, instance: int, name: str, due_in: int | None) -> None:
        expected = self.model[instance]
        data = {} if due_in is None else {"due_at": self.due(due_in)}
        move = self.definition.transition(name)
        if move is None:
            outcome: type[Exception] | None = ValidationError
        elif expected.state not in move.sources or not self.guard_passes(expected, name):
            outcome = Rejected
        else:
            outcome = None
        try:
            with self.crm.transaction(actor="user") as tx:
                step = tx.workflows.fire(instance, name, data=data)
        except (ValidationError, Rejected) as exc:
            assert type(exc) is outcome, f"{name} from {expected.state}: {exc!r}"
            return
        assert outcome is None, f"{name} from {expected.state} was allowed"
        self.take(expected, name, step.at, data)

    @rule(hours=st.sampled_from([1, 11, 13, 25, 49, 73, 121]))
    def tick(self, hours: int) -> None:
        self.now = max(self.now, utcnow()) + dt.timedelta(hours=hours)
        fired = failed = 0
        for expected in self.model.values():
            while True:
                due = sorted((when, self.order[name], name)
                             for name, when in expected.pending.items() if when <= self.now)
                if not due:
                    break
                name = due[0][2]
                if not self.guard_passes(expected, name):
                    del expected.pending[name]  # failed, never retried
                    expected.failed += 1
                    failed += 1
                    continue
                expected.fired += 1
                fired += 1
                self.take(expected, name, self.now, {})
        assert fire_due_timers(self.crm, now=self.now) == TimerResult(fired, failed)

    def due(self, hours: int) -> str:
        return (max(self.now, utcnow()) + dt.timedelta(hours=hours)).isoformat()

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def the_database_matches_the_model(self) -> None:
        with self.crm.session() as session:
            rows = {i.id: i for i in session.scalars(select(WorkflowInstance))}
            steps: dict[int, list[WorkflowStep]] = {}
            for step in session.scalars(select(WorkflowStep).order_by(WorkflowStep.id)):
                steps.setdefault(step.instance_id, []).append(step)
            timers: dict[int, list[WorkflowTimer]] = {}
            for timer in session.scalars(select(WorkflowTimer).order_by(WorkflowTimer.id)):
                timers.setdefault(timer.instance_id, []).append(timer)
        assert set(rows) == set(self.model)
        for instance_id, expected in self.model.items():
            row, history = rows[instance_id], steps[instance_id]
            assert row.state == expected.state
            assert row.version == len(expected.path)
            assert (row.closed_at is not None) == (expected.state in self.definition.final)
            path = [(s.transition, s.from_state, s.to_state) for s in history]
            assert path == expected.path
            assert self.is_valid_path(path), path
            mine = timers.get(instance_id, [])
            assert {t.transition: t.due_at for t in mine if t.status == "pending"} \
                == expected.pending
            assert sum(t.status == "fired" for t in mine) == expected.fired \
                == sum(s.actor == "timer" for s in history)
            assert sum(t.status == "failed" for t in mine) == expected.failed

    def is_valid_path(self, path: list[tuple[str, str | None, str]]) -> bool:
        state = self.definition.initial
        if path[0] != ("start", None, state):
            return False
        for name, source, target in path[1:]:
            move = self.definition.transition(name)
            if move is None or source != state or state not in move.sources \
                    or target != move.target:
                return False
            state = target
        return True


def test_workflow_engine_against_a_model(crm_factory):
    crm = crm_factory(config={"workflows": {"review": REVIEW},
                              "events": {"dispatch": "worker"}})
    run_state_machine_as_test(
        lambda: WorkflowMachine(crm),
        settings=settings(max_examples=30, stateful_step_count=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
