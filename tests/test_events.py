"""The outbox and its dispatcher: delivery after commit, retries, dead letters, leases.

Handlers are plugins registered through ``crm_factory``; "time passes" by moving
``next_attempt_at`` back in the database rather than by sleeping, except where the test is
about a lease running out.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text, update

from crmkit import Crm, Event, NotFound, hookimpl
from crmkit.db import utcnow
from crmkit.events import DispatchResult, Outcome
from crmkit.models import Customer, OutboxEvent
from crmkit.testing import backend_name


class Recorder:
    """A ``handle_event`` plugin that records each call and fails while told to."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[Event] = []
        self.lock = threading.Lock()

    @hookimpl
    def handle_event(self, crm: Crm, event: Event) -> None:
        with self.lock:
            self.calls.append(event)
            if self.failures:
                self.failures -= 1
                raise RuntimeError("downstream is down")

    def ids(self) -> list[int]:
        return [e.id for e in self.calls]


def outbox(crm: Crm) -> list[OutboxEvent]:
    with crm.session() as session:
        return list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def make_due(crm: Crm) -> None:
    """Let time pass: every pending event becomes due now."""
    with crm.session() as session, session.begin():
        session.execute(update(OutboxEvent).where(OutboxEvent.status == "pending")
                        .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))


def create_customer(crm: Crm, name: str = "Acme") -> int:
    with crm.transaction(actor="alice") as tx:
        customer = tx.customers.create(kind="organization", name=name)
        tx.interactions.log(customer, channel="phone", kind="note", summary="hello")
        return customer.id


# -- inline and worker delivery -------------------------------------------------------------


def test_inline_delivery_after_commit(crm_factory) -> None:
    seen_committed: list[bool] = []

    class Reader(Recorder):
        @hookimpl
        def handle_event(self, crm: Crm, event: Event) -> None:
            super().handle_event(crm, event)
            with crm.session() as session:  # the change is visible to the handler
                seen_committed.append(
                    session.get(Customer, event.payload["customer_id"]) is not None)

    recorder = Reader()
    crm = crm_factory(plugins={"rec": recorder})  # events.dispatch defaults to "inline"
    with crm.transaction(actor="alice") as tx:
        customer = tx.customers.create(kind="organization", name="Acme")
        tx.interactions.log(customer, channel="phone", kind="note", summary="hello")
        assert recorder.calls == []  # nothing is delivered before commit
    assert [(e.name, e.actor, e.attempt) for e in recorder.calls] == [
        ("customer.created", "alice", 1), ("interaction.logged", "alice", 1)
    ]
    assert seen_committed == [True, True]
    assert recorder.calls[0].payload["customer"]["name"] == "Acme"
    assert recorder.calls[0].created_at.tzinfo is not None
    rows = outbox(crm)
    assert [(r.id, r.status, r.attempts, r.delivered_to, r.last_error) for r in rows] == [
        (e.id, "delivered", 1, ["rec"], None) for e in recorder.calls
    ]
    assert all(r.delivered_at is not None for r in rows)


def test_worker_mode_leaves_events_pending(crm_factory) -> None:
    recorder = Recorder()
    crm = crm_factory(plugins={"rec": recorder}, config={"events": {"dispatch": "worker"}})
    create_customer(crm)
    assert recorder.calls == []
    rows = outbox(crm)
    assert [(r.name, r.status, r.attempts, r.delivered_to) for r in rows] == [
        ("customer.created", "pending", 0, []), ("interaction.logged", "pending", 0, [])
    ]
    result = crm.dispatcher.run_once()
    assert result == DispatchResult(delivered=2)
    assert recorder.ids() == [r.id for r in rows]
    assert {r.status for r in outbox(crm)} == {"delivered"}
    assert crm.dispatcher.run_once().claimed == 0  # delivered once, not again
    assert len(recorder.calls) == 2


def test_run_once_respects_limit_and_order(crm_factory) -> None:
    recorder = Recorder()
    crm = crm_factory(plugins={"rec": recorder}, config={"events": {"dispatch": "worker"}})
    for i in range(3):
        create_customer(crm, f"C{i}")
    ids = [r.id for r in outbox(crm)]
    assert crm.dispatcher.run_once(limit=4).delivered == 4
    assert crm.dispatcher.run_once(limit=4).delivered == 2
    assert recorder.ids() == ids  # oldest first


def test_rollback_writes_no_event(crm_factory) -> None:
    recorder = Recorder()
    crm = crm_factory(plugins={"rec": recorder})
    with pytest.raises(ZeroDivisionError), crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ann")
        tx.emit("custom.thing", {"x": 1})
        1 / 0  # noqa: B018
    assert outbox(crm) == []
    assert recorder.calls == []


def test_a_handler_may_open_its_own_transaction(crm_factory) -> None:
    class FollowUp(Recorder):
        @hookimpl
        def handle_event(self, crm: Crm, event: Event) -> None:
            super().handle_event(crm, event)
            if event.name == "customer.created":
                with crm.transaction(actor="follow-up") as tx:
                    tx.interactions.log(event.payload["customer_id"], channel="email",
                                        direction="outbound", kind="marketing",
                                        summary="Welcome!")

    recorder = FollowUp()
    crm = crm_factory(plugins={"rec": recorder})
    with crm.transaction() as tx:
        customer_id = tx.customers.create(kind="person", name="Ann").id
    assert [e.name for e in recorder.calls] == ["customer.created", "interaction.logged"]
    with crm.transaction() as tx:
        [welcome] = tx.interactions.timeline(customer_id)
    assert (welcome.summary, welcome.actor) == ("Welcome!", "follow-up")
    assert {r.status for r in outbox(crm)} == {"delivered"}


# -- retries, back-off and dead letters ------------------------------------------------------

RETRYING = {"events": {"backoff_seconds": 100, "max_backoff_seconds": 1000, "max_attempts": 3}}


def test_failing_handler_is_retried_with_backoff_then_dead(crm_factory) -> None:
    recorder = Recorder(failures=1000)
    crm = crm_factory(plugins={"rec": recorder}, config=RETRYING)
    with crm.transaction() as tx:  # inline delivery fails; the commit stands
        customer_id = tx.customers.create(kind="person", name="Ann").id
    with crm.transaction() as tx:
        assert tx.customers.get(customer_id).name == "Ann"

    # Attempt n waits backoff * 2 ** (n - 1) seconds, jittered down to half of that.
    for attempt, (low, high) in enumerate([(50, 100), (100, 200)], start=1):
        [row] = outbox(crm)
        wait = (row.next_attempt_at - utcnow()).total_seconds()
        assert (row.status, row.attempts) == ("pending", attempt)
        assert low - 5 <= wait <= high, (attempt, wait)
        assert row.last_error == (
            "plugin 'rec' failed in hook 'handle_event': RuntimeError: downstream is down")
        assert crm.dispatcher.run_once().claimed == 0  # not due yet
        make_due(crm)
        result = crm.dispatcher.run_once()
        assert result == (DispatchResult(retrying=1) if attempt < 2 else DispatchResult(dead=1))

    [row] = outbox(crm)
    assert (row.status, row.attempts) == ("dead", 3)
    assert [e.attempt for e in recorder.calls] == [1, 2, 3]
    make_due(crm)
    assert crm.dispatcher.run_once().claimed == 0  # the dead are not retried by themselves
    assert len(recorder.calls) == 3


def test_backoff_is_exponential_and_capped(crm: Crm) -> None:
    dispatcher = crm.dispatcher  # defaults: 2 s, capped at 3600 s
    for attempts in range(1, 12):
        expected = min(3600.0, 2.0 * 2 ** (attempts - 1))
        for _ in range(20):
            assert expected / 2 <= dispatcher.backoff(attempts) <= expected


def test_retry_revives_dead_events(crm_factory) -> None:
    recorder = Recorder(failures=1000)
    crm = crm_factory(plugins={"rec": recorder},
                      config={"events": {"max_attempts": 1, "dispatch": "worker"}})
    create_customer(crm)
    first, second = (r.id for r in outbox(crm))
    assert crm.dispatcher.run_once() == DispatchResult(dead=2)
    recorder.failures = 0  # the downstream system is back

    assert crm.dispatcher.retry([first]) == 1
    row = {r.id: r for r in outbox(crm)}[first]
    assert (row.status, row.attempts) == ("pending", 0)
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    assert recorder.calls[-1].id == first

    assert crm.dispatcher.retry(all_dead=True) == 1
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    assert recorder.calls[-1].id == second
    assert {r.status for r in outbox(crm)} == {"delivered"}

    assert crm.dispatcher.retry([first]) == 0  # a delivered event is not sent again
    assert crm.dispatcher.retry(all_dead=True) == 0
    with pytest.raises(NotFound, match="no event with id 999999"):
        crm.dispatcher.retry([first, 999999])


def test_retry_calls_only_the_plugin_that_failed(crm_factory) -> None:
    good, flaky = Recorder(), Recorder(failures=1)
    crm = crm_factory(plugins={"good": good, "flaky": flaky},
                      config={"events": {"dispatch": "worker"}})
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ann")
    assert crm.dispatcher.run_once() == DispatchResult(retrying=1)
    [row] = outbox(crm)
    assert row.delivered_to == ["good"]
    assert row.last_error == (
        "plugin 'flaky' failed in hook 'handle_event': RuntimeError: downstream is down")

    make_due(crm)
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    [row] = outbox(crm)
    assert sorted(row.delivered_to) == ["flaky", "good"]
    assert (row.status, row.last_error) == ("delivered", None)
    assert [e.attempt for e in good.calls] == [1]  # not called again
    assert [e.attempt for e in flaky.calls] == [1, 2]


# -- leases -----------------------------------------------------------------------------------


class WorkerDied(BaseException):
    """The worker process is killed in the middle of a delivery."""


def test_a_worker_that_dies_leaves_the_event_claimable_after_the_lease(crm_factory) -> None:
    class Dies(Recorder):
        @hookimpl
        def handle_event(self, crm: Crm, event: Event) -> None:
            super().handle_event(crm, event)
            if len(self.calls) == 1:
                raise WorkerDied

    recorder = Dies()
    lease = 0.4
    crm = crm_factory(plugins={"rec": recorder},
                      config={"events": {"dispatch": "worker", "lease_seconds": lease}})
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ann")
    claimed_at = utcnow()
    with pytest.raises(WorkerDied):
        crm.dispatcher.run_once()
    [row] = outbox(crm)
    assert (row.status, row.attempts, row.delivered_to) == ("pending", 1, [])
    lease_end = (row.next_attempt_at - claimed_at).total_seconds()
    assert 0 < lease_end <= lease + 1

    assert crm.dispatcher.run_once().claimed == 0  # leased to the dead worker
    time.sleep(max(0.0, (row.next_attempt_at - utcnow()).total_seconds()) + 0.05)
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    assert [e.attempt for e in recorder.calls] == [1, 2]
    [row] = outbox(crm)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_an_outcome_reported_after_the_lease_ran_out_is_dropped(crm_factory) -> None:
    recorder = Recorder()
    config = {"events": {"dispatch": "worker"}}
    slow = crm_factory(plugins={"rec": recorder}, config=config)
    fast = crm_factory(plugins={"rec": recorder}, config=config)
    with slow.transaction() as tx:
        tx.customers.create(kind="person", name="Ann")
    [claimed] = slow.dispatcher.claim(10)  # attempt 1, then the slow worker stalls...
    make_due(slow)  # ...past the end of its lease
    assert fast.dispatcher.run_once() == DispatchResult(delivered=1)  # attempt 2

    result = DispatchResult()
    claimed.delivered_to = []
    slow.dispatcher.record(claimed, Outcome("timed out talking to the ERP"), result)
    assert result == DispatchResult()  # not counted: it was not this worker's any more
    [row] = outbox(slow)
    assert (row.status, row.attempts, row.delivered_to, row.last_error) == (
        "delivered", 2, ["rec"], None
    )


def test_claim_skips_events_another_worker_holds(crm_factory, crmkit_database_url: str) -> None:
    """PostgreSQL and MariaDB: a claim skips rows another transaction has locked (FOR UPDATE
    SKIP LOCKED) instead of waiting; SQLite serialises claims with its write lock."""
    recorder = Recorder()
    crm = crm_factory(plugins={"rec": recorder}, config={"events": {"dispatch": "worker"}})
    create_customer(crm)
    locked, free = (r.id for r in outbox(crm))
    holder = crm_factory(config={"events": {"dispatch": "worker"}})
    hold = 0.5
    held = threading.Event()

    def hold_lock() -> None:
        with holder.session() as session, session.begin():
            query = select(OutboxEvent).where(OutboxEvent.id == locked)
            if backend_name(crmkit_database_url) != "sqlite":
                query = query.with_for_update()
            session.execute(query)
            if backend_name(crmkit_database_url) == "sqlite":
                session.execute(text("UPDATE outbox_event SET attempts = attempts "
                                     "WHERE id = :id"), {"id": locked})
            held.set()
            time.sleep(hold)

    thread = threading.Thread(target=hold_lock, daemon=True)
    thread.start()
    assert held.wait(10)
    started = time.monotonic()
    result = crm.dispatcher.run_once()
    waited = time.monotonic() - started
    thread.join(10)
    if backend_name(crmkit_database_url) == "sqlite":
        assert waited >= hold * 0.8  # waited for the holder's transaction
        assert result == DispatchResult(delivered=2)
    else:
        assert waited < hold  # did not wait for the lock
        assert result == DispatchResult(delivered=1)
        assert recorder.ids() == [free]
        assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    assert sorted(recorder.ids()) == [locked, free]


def test_concurrent_dispatchers_deliver_each_event_exactly_once(crm_factory) -> None:
    recorder = Recorder()
    config: dict[str, Any] = {"events": {"dispatch": "worker", "batch_size": 3}}
    writer = crm_factory(config=config)
    with writer.transaction() as tx:
        for i in range(20):
            customer = tx.customers.create(kind="person", name=f"P{i}")
            tx.interactions.log(customer, channel="web", kind="note", summary="x")
    expected = [r.id for r in outbox(writer)]
    assert len(expected) == 40
    workers = [crm_factory(plugins={"rec": recorder}, config=config) for _ in range(2)]
    start = threading.Barrier(len(workers))
    results: list[DispatchResult] = []
    errors: list[BaseException] = []

    def work(crm: Crm) -> None:
        try:
            start.wait(10)
            total = DispatchResult()
            while (result := crm.dispatcher.run_once()).claimed:
                total.delivered += result.delivered
            results.append(total)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(crm,), daemon=True) for crm in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert errors == []
    # A worker may stop early when the other holds every remaining row; finish the rest.
    while workers[0].dispatcher.run_once().claimed:
        pass
    counts = Counter(recorder.ids())
    assert sorted(counts) == expected
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}
    assert {(r.status, r.attempts) for r in outbox(writer)} == {("delivered", 1)}


def test_event_payloads_take_dates_times_and_money(crm) -> None:
    with crm.transaction() as tx:
        tx.emit("test.values", {"day": dt.date(2026, 11, 25), "at": dt.time(9, 30),
                                "amount": Decimal("12.50"),
                                "nested": [{"d": dt.date(2026, 1, 2)}]})
    with crm.session() as session:
        [payload] = [e.payload for e in session.scalars(select(OutboxEvent))]
    assert payload == {"day": "2026-11-25", "at": "09:30:00", "amount": "12.50",
                       "nested": [{"d": "2026-01-02"}]}
