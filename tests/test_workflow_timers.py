"""Workflow timers: armed on entering a state, cancelled on leaving, fired exactly once.

Time passes by handing ``fire_due_timers`` a ``now`` in the future, never by sleeping. Every
test runs on SQLite, PostgreSQL and MariaDB; the two-worker tests run there too (on SQLite
the workers take turns on the write lock, on the servers they really run at once).
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from workflow_samples import ONBOARDING

from crmkit import Crm, Rejected, hookimpl
from crmkit.errors import Conflict, ValidationError
from crmkit.models import AuditEntry, OutboxEvent, WorkflowInstance, WorkflowStep, WorkflowTimer
from crmkit.testing import backend_name
from crmkit.workflow import TimerResult, WorkflowDefinition, fire_due_timers

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)

#: SLA escalation: "a claim not triaged in 48 hours escalates"; a triaged claim expires at
#: the deadline a plugin stored in its data; an escalated one is auto-approved after a day
#: if the customer has an e-mail.
CLAIM: dict[str, Any] = {
    "initial": "received",
    "states": ["received", "triaged", "escalated", "approved", "expired"],
    "final": ["approved", "expired"],
    "transitions": [
        {"name": "triage", "from": "received", "to": "triaged"},
        {"name": "escalate", "from": "received", "to": "escalated",
         "timer": {"after": "PT48H"}},
        {"name": "expire", "from": "triaged", "to": "expired", "timer": {"at": "data.due_at"}},
        {"name": "approve", "from": ["triaged", "escalated"], "to": "approved",
         "guard": {"field": "customer.email", "op": "exists"}, "timer": {"after": "P1D"}},
    ],
}


#: A deadline from the start.
DEADLINE: dict[str, Any] = {
    "initial": "open", "states": ["open", "lapsed"], "final": ["lapsed"],
    "transitions": [{"name": "lapse", "from": "open", "to": "lapsed",
                     "timer": {"at": "data.due_at"}}],
}


def make_crm(crm_factory, plugins: dict[str, object] | None = None,
             workflows: dict[str, Any] | None = None) -> Crm:
    return crm_factory(plugins=plugins, config={
        "workflows": {"onboarding": ONBOARDING, "claim": CLAIM, "deadline": DEADLINE,
                      **(workflows or {})},
        "events": {"dispatch": "worker"}})


def new_customer(crm: Crm, name: str = "Acme", **fields: Any) -> int:
    with crm.transaction(actor="alice") as tx:
        return tx.customers.create(kind="organization", name=name, **fields).id


def start(crm: Crm, customer: int, workflow: str = "onboarding", **kwargs: Any
          ) -> tuple[int, dt.datetime]:
    """Start ``workflow``; the instance id and when it entered its initial state."""
    with crm.transaction(actor="alice") as tx:
        instance = tx.workflows.start(workflow, customer=customer, **kwargs)
        return instance.id, instance.state_entered_at


def fire(crm: Crm, instance: int, transition: str, **kwargs: Any) -> dt.datetime:
    """Fire ``transition``; when the instance entered its new state."""
    with crm.transaction(actor="alice") as tx:
        return tx.workflows.fire(instance, transition, **kwargs).at


def timers(crm: Crm, instance: int | None = None) -> list[dict[str, Any]]:
    query = select(WorkflowTimer).order_by(WorkflowTimer.id)
    if instance is not None:
        query = query.where(WorkflowTimer.instance_id == instance)
    with crm.session() as session:
        return [{"id": t.id, "instance": t.instance_id, "transition": t.transition,
                 "due_at": t.due_at, "status": t.status, "fired_at": t.fired_at,
                 "error": t.error} for t in session.scalars(query)]


def pending(crm: Crm, instance: int) -> list[tuple[str, dt.datetime]]:
    return [(t["transition"], t["due_at"]) for t in timers(crm, instance)
            if t["status"] == "pending"]


def statuses(crm: Crm, instance: int) -> list[tuple[str, str]]:
    return [(t["transition"], t["status"]) for t in timers(crm, instance)]


def instance_row(crm: Crm, instance: int) -> dict[str, Any]:
    with crm.session() as session:
        return session.get(WorkflowInstance, instance).to_dict()


def steps(crm: Crm, instance: int) -> list[dict[str, Any]]:
    with crm.session() as session:
        return [s.to_dict() for s in session.scalars(
            select(WorkflowStep).where(WorkflowStep.instance_id == instance)
            .order_by(WorkflowStep.id))]


def counts(crm: Crm) -> dict[str, int]:
    with crm.session() as session:
        return {m.__tablename__: session.scalar(select(func.count()).select_from(m))
                for m in (WorkflowStep, AuditEntry, OutboxEvent)}


def is_valid_path(definition: WorkflowDefinition, history: list[dict[str, Any]]) -> bool:
    state = definition.initial
    if [(s["transition"], s["from"], s["to"]) for s in history[:1]] != [("start", None, state)]:
        return False
    for step in history[1:]:
        move = definition.transition(step["transition"])
        if move is None or step["from"] != state or state not in move.sources \
                or step["to"] != move.target:
            return False
        state = move.target
    return True


# -- arming and cancelling -------------------------------------------------------------------


def test_an_after_timer_is_armed_on_entering_and_cancelled_on_leaving(crm_factory):
    crm = make_crm(crm_factory)
    instance, started = start(crm, new_customer(crm, email="a@example.com"))
    assert pending(crm, instance) == [("go_cold", started + 30 * DAY)]

    contacted = fire(crm, instance, "contact")  # go_cold again, 30 days from this moment
    assert contacted > started
    assert statuses(crm, instance) == [("go_cold", "cancelled"), ("go_cold", "pending")]
    assert pending(crm, instance) == [("go_cold", contacted + 30 * DAY)]

    fire(crm, instance, "qualify")  # "qualified" has no timer
    assert statuses(crm, instance) == [("go_cold", "cancelled"), ("go_cold", "cancelled")]
    assert fire_due_timers(crm, now=contacted + 365 * DAY) == TimerResult(0, 0)
    assert instance_row(crm, instance)["state"] == "qualified"


def test_an_at_timer_fires_at_the_time_in_the_data(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm, email="a@example.com")
    instance, started = start(crm, customer, "claim",
                              data={"due_at": "2031-01-15T09:30:00Z"})
    fire(crm, instance, "triage")
    deadline = dt.datetime(2031, 1, 15, 9, 30, tzinfo=dt.UTC)
    assert [t for t, _ in pending(crm, instance)] == ["expire", "approve"]
    assert pending(crm, instance)[0] == ("expire", deadline)

    assert fire_due_timers(crm, now=deadline - HOUR, limit=10) == TimerResult(1, 0)  # approve
    assert instance_row(crm, instance)["state"] == "approved"
    assert statuses(crm, instance) == [
        ("escalate", "cancelled"), ("expire", "cancelled"), ("approve", "fired")]


def test_an_at_time_given_with_the_transition_and_with_an_offset(crm_factory):
    crm = make_crm(crm_factory)
    instance, _ = start(crm, new_customer(crm), "claim")
    fire(crm, instance, "triage", data={"due_at": "2031-01-15T11:30:00+02:00"})
    deadline = dt.datetime(2031, 1, 15, 9, 30, tzinfo=dt.UTC)
    assert pending(crm, instance)[0] == ("expire", deadline)
    assert fire_due_timers(crm, now=deadline - dt.timedelta(microseconds=1)) == TimerResult(0, 1)
    # "approve" came due first and failed on its guard (no e-mail); "expire" is still armed.
    assert fire_due_timers(crm, now=deadline) == TimerResult(1, 0)
    assert instance_row(crm, instance)["state"] == "expired"
    assert steps(crm, instance)[-1]["transition"] == "expire"


def test_an_at_timer_without_a_time_is_not_armed(crm_factory):
    crm = make_crm(crm_factory)
    instance, _ = start(crm, new_customer(crm), "claim", data={"due_at": None})
    fire(crm, instance, "triage")
    assert [t for t, _ in pending(crm, instance)] == ["approve"]


def test_an_at_time_that_is_no_time_refuses_the_transition(crm_factory):
    crm = make_crm(crm_factory)
    instance, _ = start(crm, new_customer(crm), "claim")
    before = counts(crm), statuses(crm, instance)
    for due_at in ["next tuesday", "2031-01-15T09:30:00", "2031-01-15", 1767225600,
                   "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00+00:00", ["2031-01-15"]]:
        with pytest.raises(ValidationError) as caught:
            fire(crm, instance, "triage", data={"due_at": due_at})
        assert str(caught.value) == (
            "data.due_at: a timer fires at this time: it must be an ISO 8601 date-time with an "
            f"offset (2026-12-01T09:00:00+00:00) between the years 1000 and 9998, got {due_at!r}")
    assert (counts(crm), statuses(crm, instance)) == before
    assert instance_row(crm, instance)["state"] == "received"
    with pytest.raises(ValidationError, match="data.due_at: a timer fires"):  # also at start
        start(crm, new_customer(crm, "Other"), "deadline", data={"due_at": "soon"})
    with crm.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkflowInstance)) == 1


# -- firing ------------------------------------------------------------------------------------


def test_due_timers_fire_exactly_once_as_the_timer(crm_factory):
    crm = make_crm(crm_factory)
    early, started = start(crm, new_customer(crm, "Early"))
    late, _ = start(crm, new_customer(crm, "Late"))
    late_contacted = fire(crm, late, "contact")
    [early_timer] = [t for t in timers(crm, early) if t["status"] == "pending"]

    assert fire_due_timers(crm, now=started + 30 * DAY - HOUR) == TimerResult(0, 0)
    now = started + 30 * DAY
    before = counts(crm)
    assert fire_due_timers(crm, now=now) == TimerResult(fired=1, failed=0)
    assert fire_due_timers(crm, now=now) == TimerResult(0, 0)  # once, not again

    row = instance_row(crm, early)
    assert (row["state"], row["version"]) == ("lost", 2)
    assert row["closed_at"] == row["state_entered_at"] == now.isoformat()
    step = steps(crm, early)[-1]
    assert (step["transition"], step["from"], step["to"], step["actor"], step["data"],
            step["at"]) == ("go_cold", "new", "lost", "timer", {"timer_id": early_timer["id"]},
                            now.isoformat())
    [fired] = timers(crm, early)
    assert (fired["status"], fired["fired_at"], fired["error"]) == ("fired", now, None)
    assert counts(crm) == {k: v + 1 for k, v in before.items()}
    with crm.session() as session:
        event = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id.desc())).first()
    assert (event.name, event.actor, event.payload["transition"]) == (
        "workflow.transitioned", "timer", "go_cold")
    # The other instance's timer was re-armed when it was contacted: not due yet.
    assert instance_row(crm, late)["state"] == "contacted"
    assert fire_due_timers(crm, now=late_contacted + 30 * DAY) == TimerResult(1, 0)
    assert [s["transition"] for s in steps(crm, late)] == ["start", "contact", "go_cold"]


def test_a_timer_fire_arms_the_next_state_from_now(crm_factory):
    chain = {"initial": "a", "states": ["a", "b", "c"], "final": ["c"], "transitions": [
        {"name": "ab", "from": "a", "to": "b", "timer": {"after": "P1D"}},
        {"name": "bc", "from": "b", "to": "c", "timer": {"after": "P1D"}}]}
    crm = make_crm(crm_factory, workflows={"chain": chain})
    instance, started = start(crm, new_customer(crm), "chain")
    now = started + 3 * DAY  # the worker was down for days: one step per pass, from now
    assert fire_due_timers(crm, now=now) == TimerResult(1, 0)
    assert instance_row(crm, instance)["state"] == "b"
    assert pending(crm, instance) == [("bc", now + DAY)]
    assert fire_due_timers(crm, now=now + DAY - HOUR) == TimerResult(0, 0)
    assert fire_due_timers(crm, now=now + DAY) == TimerResult(1, 0)
    assert [(s["transition"], s["at"]) for s in steps(crm, instance)] == [
        ("start", started.isoformat()), ("ab", now.isoformat()),
        ("bc", (now + DAY).isoformat())]


def test_a_deadline_that_loops_back_fires_once(crm_factory):
    """An SLA breach as a transition from a state to itself (the warranty plugin's pattern)
    must not re-arm the deadline it just handled, or every pass would fire it again."""
    sla = {"initial": "open", "states": ["open", "done"], "final": ["done"], "transitions": [
        {"name": "overdue", "from": "open", "to": "open", "timer": {"at": "data.due_at"}},
        {"name": "finish", "from": "open", "to": "done"}]}
    crm = make_crm(crm_factory, workflows={"sla": sla})
    instance, _ = start(crm, new_customer(crm), "sla", data={"due_at": "2030-01-01T00:00:00Z"})
    now = dt.datetime(2030, 1, 2, tzinfo=dt.UTC)
    assert fire_due_timers(crm, now=now) == TimerResult(1, 0)
    assert fire_due_timers(crm, now=now + DAY) == TimerResult(0, 0)
    assert [s["transition"] for s in steps(crm, instance)] == ["start", "overdue"]
    assert pending(crm, instance) == []
    # A new deadline given with the transition is armed again.
    with crm.transaction() as tx:
        tx.workflows.fire(instance, "overdue", data={"due_at": "2030-02-01T00:00:00Z"})
    assert pending(crm, instance) == [("overdue", dt.datetime(2030, 2, 1, tzinfo=dt.UTC))]


def test_limit_bounds_one_pass(crm_factory):
    crm = make_crm(crm_factory)
    started = [start(crm, new_customer(crm, f"C{i}"))[1] for i in range(3)]
    now = max(started) + 31 * DAY
    assert fire_due_timers(crm, now=now, limit=2) == TimerResult(2, 0)
    assert fire_due_timers(crm, now=now, limit=2) == TimerResult(1, 0)
    assert fire_due_timers(crm, now=now, limit=2) == TimerResult(0, 0)


# -- refused timer transitions ---------------------------------------------------------------


def test_a_timer_refused_by_its_guard_is_marked_failed_with_the_reason(crm_factory):
    crm = make_crm(crm_factory)
    customer = new_customer(crm)  # no e-mail: "approve" is refused
    instance, _ = start(crm, customer, "claim")
    entered = fire(crm, instance, "triage")
    before = counts(crm)
    now = entered + DAY
    assert fire_due_timers(crm, now=now) == TimerResult(fired=0, failed=1)
    [approve] = [t for t in timers(crm, instance) if t["transition"] == "approve"]
    assert (approve["status"], approve["fired_at"]) == ("failed", now)
    assert approve["error"] == (
        f"the guard of 'approve' is not met by customer {customer}: "
        "{'field': 'customer.email', 'op': 'exists'}")
    assert counts(crm) == before
    assert instance_row(crm, instance)["state"] == "triaged"
    assert fire_due_timers(crm, now=now + 365 * DAY) == TimerResult(0, 0)  # not retried


class Keeper:
    """Vetoes every ``go_cold``; may also fail after the transition."""

    def __init__(self) -> None:
        self.veto = True
        self.fail_after = False

    @hookimpl
    def before_transition(self, tx, instance, transition, data):
        if self.veto and transition.name == "go_cold":
            raise Rejected("an account manager is still on it")

    @hookimpl
    def workflow_transitioned(self, tx, instance, step):
        if self.fail_after:
            tx.audit("keeper", instance.id, "note", {"after": {"seen": step.transition}})
            tx.session.flush()
            raise RuntimeError("crm mailer down")


def test_a_timer_vetoed_by_a_plugin_is_marked_failed_with_the_reason(crm_factory):
    crm = make_crm(crm_factory, plugins={"keeper": Keeper()})
    instance, started = start(crm, new_customer(crm))
    before = counts(crm)
    assert fire_due_timers(crm, now=started + 31 * DAY) == TimerResult(fired=0, failed=1)
    [timer] = timers(crm, instance)
    assert timer["status"] == "failed"
    assert timer["error"] == ("an account manager is still on it (raised by plugin 'keeper' "
                              "in hook 'before_transition')")
    assert counts(crm) == before
    assert instance_row(crm, instance)["state"] == "new"


def test_a_timer_that_collides_stays_due_for_the_next_pass(crm_factory):
    class Busy:
        """Its own records changed meanwhile: a Conflict, not a refusal."""

        def __init__(self) -> None:
            self.calls = 0

        @hookimpl
        def before_transition(self, tx, instance, transition, data):
            self.calls += 1
            if self.calls == 1:
                raise Conflict("the plugin's record moved on")

    busy = Busy()
    crm = make_crm(crm_factory, plugins={"busy": busy})
    first, started = start(crm, new_customer(crm, "First"))
    second, _ = start(crm, new_customer(crm, "Second"))
    now = started + 31 * DAY
    # The first timer collides and is left for later; the pass goes on with the second.
    assert fire_due_timers(crm, now=now) == TimerResult(1, 0)
    assert statuses(crm, first) == [("go_cold", "pending")]
    assert statuses(crm, second) == [("go_cold", "fired")]
    assert fire_due_timers(crm, now=now) == TimerResult(1, 0)
    assert statuses(crm, first) == [("go_cold", "fired")]
    assert busy.calls == 3


def test_a_timer_whose_follow_up_fails_rolls_the_transition_back(crm_factory):
    keeper = Keeper()
    keeper.veto, keeper.fail_after = False, True
    crm = make_crm(crm_factory, plugins={"keeper": keeper})
    instance, started = start(crm, new_customer(crm))
    before = counts(crm)
    assert fire_due_timers(crm, now=started + 31 * DAY) == TimerResult(fired=0, failed=1)
    [timer] = timers(crm, instance)
    assert (timer["status"], timer["error"]) == (
        "failed", "plugin 'keeper' failed in hook 'workflow_transitioned': RuntimeError: crm "
                  "mailer down")
    assert counts(crm) == before  # the step, audit entries and event are gone, the plugin's too
    row = instance_row(crm, instance)
    assert (row["state"], row["version"], row["closed_at"]) == ("new", 1, None)


def test_a_timer_whose_transition_no_longer_exists_fails(crm_factory):
    crm = make_crm(crm_factory)
    instance, started = start(crm, new_customer(crm))
    renamed = {**ONBOARDING, "transitions": [
        {**t, "name": "went_cold"} if t["name"] == "go_cold" else t
        for t in ONBOARDING["transitions"]]}
    changed = make_crm(crm_factory, workflows={"onboarding": renamed})  # the config changed
    assert fire_due_timers(changed, now=started + 31 * DAY) == TimerResult(0, 1)
    [timer] = timers(crm, instance)
    assert timer["status"] == "failed"
    assert "workflow 'onboarding' has no transition 'go_cold'" in timer["error"]


def test_a_timer_the_definition_no_longer_has_fails(crm_factory):
    crm = make_crm(crm_factory)
    instance, _ = start(crm, new_customer(crm), "deadline", data={"due_at": "2030-01-01T00:00:00Z"})
    manual = {**DEADLINE, "transitions": [{"name": "lapse", "from": "open", "to": "lapsed"}]}
    changed = make_crm(crm_factory, workflows={"deadline": manual})  # the timer was removed
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert fire_due_timers(changed, now=now) == TimerResult(0, 1)
    [timer] = timers(crm, instance)
    assert (timer["status"], timer["error"]) == (
        "failed", "transition 'lapse' of workflow 'deadline' no longer has a timer")
    assert instance_row(crm, instance)["state"] == "open"


def test_now_must_be_timezone_aware(crm_factory):
    crm = make_crm(crm_factory)
    with pytest.raises(ValidationError, match="now: must be timezone-aware"):
        fire_due_timers(crm, now=dt.datetime(2030, 1, 1))


# -- several workers -------------------------------------------------------------------------


def _run_together(crms: list[Crm], work) -> list[object]:
    gate = threading.Barrier(len(crms), timeout=30)
    outcomes: list[object] = [None] * len(crms)

    def run(index: int) -> None:
        try:
            gate.wait()
            outcomes[index] = work(index, crms[index])
        except Exception as exc:  # noqa: BLE001 - the outcome is the test's subject
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(crms))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a worker hung"
    return outcomes


def _many_due(crm: Crm, count: int) -> tuple[list[int], dt.datetime]:
    with crm.transaction(actor="alice") as tx:
        ids = []
        for i in range(count):
            customer = tx.customers.create(kind="person", name=f"P{i}")
            ids.append(tx.workflows.start("onboarding", customer=customer).id)
    return ids, dt.datetime.now(dt.UTC) + 31 * DAY


def test_two_workers_fire_each_due_timer_exactly_once(crm_factory, crmkit_database_url):
    crm = make_crm(crm_factory)
    ids, now = _many_due(crm, 30)
    workers = [make_crm(crm_factory) for _ in range(2)]
    results = _run_together(workers, lambda _, w: fire_due_timers(w, now=now))
    assert all(isinstance(r, TimerResult) for r in results), results
    assert sum(r.fired for r in results) == 30 and sum(r.failed for r in results) == 0
    with crm.session() as session:
        fired_steps = session.execute(
            select(WorkflowStep.instance_id, func.count()).where(WorkflowStep.actor == "timer")
            .group_by(WorkflowStep.instance_id)).all()
        assert sorted(fired_steps) == [(i, 1) for i in ids]
        assert set(session.scalars(select(WorkflowTimer.status))) == {"fired"}
        assert set(session.scalars(select(WorkflowInstance.state))) == {"lost"}
        assert session.scalar(select(func.count()).select_from(OutboxEvent).where(
            OutboxEvent.name == "workflow.transitioned")) == 30
    if backend_name(crmkit_database_url) != "sqlite":
        # Both really worked (SKIP LOCKED lets the second pass the first's claims).
        assert all(r.fired for r in results), results


def test_a_worker_and_users_on_the_same_instances(crm_factory):
    crm = make_crm(crm_factory)
    ids, now = _many_due(crm, 20)
    definition = crm.workflows.get("onboarding")

    def user(_: int, mine: Crm) -> int:
        done = 0
        for instance in ids:
            try:
                with mine.transaction(actor="bob") as tx:
                    tx.workflows.fire(instance, "contact")
                done += 1
            except Exception as exc:  # noqa: BLE001
                if type(exc).__name__ not in ("Conflict", "Rejected"):
                    raise
        return done

    def worker(_: int, mine: Crm) -> TimerResult:
        return fire_due_timers(mine, now=now)

    crms = [make_crm(crm_factory) for _ in range(2)]
    outcomes = _run_together(crms, lambda i, c: (worker if i == 0 else user)(i, c))
    assert isinstance(outcomes[0], TimerResult) and isinstance(outcomes[1], int), outcomes
    with crm.session() as session:
        for instance in ids:
            history = [s.to_dict() for s in session.scalars(select(WorkflowStep).where(
                WorkflowStep.instance_id == instance).order_by(WorkflowStep.id))]
            assert is_valid_path(definition, history), history
            state = session.get(WorkflowInstance, instance).state
            assert state == history[-1]["to"]
            open_timers = session.scalars(select(WorkflowTimer.transition).where(
                WorkflowTimer.instance_id == instance, WorkflowTimer.status == "pending")).all()
            assert open_timers == ([] if state == "lost" else ["go_cold"])
        fired = session.scalar(select(func.count()).select_from(WorkflowTimer).where(
            WorkflowTimer.status == "fired"))
        timer_steps = session.scalar(select(func.count()).select_from(WorkflowStep).where(
            WorkflowStep.actor == "timer"))
    assert fired == timer_steps == outcomes[0].fired
    assert outcomes[0].failed == 0
