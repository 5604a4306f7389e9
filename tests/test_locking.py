"""Optimistic locking: a stale write raises Conflict and changes nothing.

Two writers are two :class:`~crmkit.Crm` objects (two engines, two connection pools) on the
same database. On PostgreSQL and MariaDB their transactions really overlap: the loser's
UPDATE waits for the winner's row lock and then finds the version moved. On SQLite every
transaction starts with ``BEGIN IMMEDIATE`` (see crmkit/db.py), so the second writer waits
for the first to commit before it even reads; the tests hold that difference explicitly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from crmkit import Conflict, Crm
from crmkit.models import AuditEntry, Customer, OutboxEvent
from crmkit.testing import backend_name

#: How long the winner keeps its transaction open once the loser is on its way: long
#: enough for the loser to reach its lock wait, short enough to keep the suite fast.
HOLD = 0.3
TIMEOUT = 20


@pytest.fixture
def backend(crmkit_database_url: str) -> str:
    return backend_name(crmkit_database_url)


@pytest.fixture
def crm_a(crm_factory) -> Crm:
    return crm_factory(config={"events": {"dispatch": "worker"}})


@pytest.fixture
def crm_b(crm_factory) -> Crm:
    return crm_factory(config={"events": {"dispatch": "worker"}})


@pytest.fixture
def customer_id(crm_a: Crm) -> int:
    with crm_a.transaction(actor="setup") as tx:
        return tx.customers.create(kind="organization", name="Acme", tags=["a"]).id


def stored(crm: Crm, customer_id: int) -> Customer:
    with crm.session() as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        session.expunge(customer)
        return customer


def updates(crm: Crm, customer_id: int) -> list[AuditEntry]:
    with crm.session() as session:
        return list(session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "customer", AuditEntry.entity_id == str(customer_id),
                   AuditEntry.action == "update")
            .order_by(AuditEntry.id)
        ))


def outbox_count(crm: Crm) -> int:
    with crm.session() as session:
        return session.scalar(select(func.count()).select_from(OutboxEvent)) or 0


def run_threads(*targets: Callable[[], Any]) -> dict[str, BaseException | None]:
    """Run each target in a thread; what each raised (None if nothing), by target name."""
    outcome: dict[str, BaseException | None] = {}

    def wrap(target: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # recorded and asserted by the test
                outcome[target.__name__] = exc
            else:
                outcome[target.__name__] = None
        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a writer hung: a lock was never released"
    return outcome


def test_stale_expected_version(crm_a: Crm, customer_id: int) -> None:
    with crm_a.transaction(actor="alice") as tx:
        tx.customers.update(customer_id, expected_version=1, name="Acme 2")
    events_before = outbox_count(crm_a)

    with pytest.raises(Conflict) as info, crm_a.transaction(actor="bob") as tx:
        tx.customers.update(customer_id, expected_version=1, name="Stale")
    assert str(info.value) == (
        f"customer {customer_id} was changed by someone else (it is at version 2, you had "
        "version 1); reload and retry"
    )
    after = stored(crm_a, customer_id)
    assert (after.name, after.version) == ("Acme 2", 2)
    assert [e.actor for e in updates(crm_a, customer_id)] == ["alice"]
    assert outbox_count(crm_a) == events_before


def test_two_deployments_read_the_same_version_then_both_write(
    crm_a: Crm, crm_b: Crm, customer_id: int
) -> None:
    """Sequential interleaving: both read version 1, then each writes what it read."""
    with crm_a.transaction() as tx:
        seen_by_a = tx.customers.get(customer_id).version
    with crm_b.transaction() as tx:
        seen_by_b = tx.customers.get(customer_id).version
    assert seen_by_a == seen_by_b == 1

    with crm_a.transaction(actor="alice") as tx:
        tx.customers.update(customer_id, expected_version=seen_by_a, name="Alice's",
                            tags=["a", "alice"])
    with pytest.raises(Conflict, match="it is at version 2, you had version 1"), \
            crm_b.transaction(actor="bob") as tx:
        tx.customers.update(customer_id, expected_version=seen_by_b, name="Bob's",
                            tags=["bob"])

    after = stored(crm_a, customer_id)
    assert (after.name, after.version, after.tags) == ("Alice's", 2, ["a", "alice"])
    [entry] = updates(crm_a, customer_id)
    assert entry.actor == "alice"
    assert entry.changes["after"] == {"name": "Alice's", "tags": ["a", "alice"]}


def test_stale_object_from_an_earlier_transaction(
    crm_a: Crm, crm_b: Crm, customer_id: int
) -> None:
    """Passing back a customer read earlier carries the version that was read."""
    with crm_b.transaction() as tx:
        bobs_copy = tx.customers.get(customer_id)
    with crm_a.transaction(actor="alice") as tx:
        tx.customers.update(customer_id, name="Alice's")
    with pytest.raises(Conflict, match="it is at version 2, you had version 1"), \
            crm_b.transaction(actor="bob") as tx:
        tx.customers.update(bobs_copy, name="Bob's")
    assert stored(crm_a, customer_id).name == "Alice's"
    assert len(updates(crm_a, customer_id)) == 1


def test_concurrent_writers_with_expected_version(
    crm_a: Crm, crm_b: Crm, customer_id: int, backend: str
) -> None:
    """Both writers expect version 1 and write at the same time: exactly one wins.

    The winner holds its transaction open until the loser is under way; on a server the
    loser reads version 1 (the winner has not committed), passes the version check, and
    its UPDATE ... WHERE version = 1 waits on the row lock and then matches nothing. On
    SQLite the loser's BEGIN IMMEDIATE waits, it then reads version 2, and the check fails.
    """
    a_wrote = threading.Event()
    b_started = threading.Event()

    def alice() -> None:
        with crm_a.transaction(actor="alice") as tx:
            tx.customers.update(customer_id, expected_version=1, name="Alice's")
            a_wrote.set()
            assert b_started.wait(TIMEOUT)
            time.sleep(HOLD)

    def bob() -> None:
        assert a_wrote.wait(TIMEOUT)
        b_started.set()
        with crm_b.transaction(actor="bob") as tx:
            tx.customers.update(customer_id, expected_version=1, name="Bob's")

    outcome = run_threads(alice, bob)
    assert outcome["alice"] is None
    assert isinstance(outcome["bob"], Conflict), outcome["bob"]
    assert "reload and retry" in str(outcome["bob"])
    after = stored(crm_a, customer_id)
    assert (after.name, after.version) == ("Alice's", 2)
    assert [e.actor for e in updates(crm_a, customer_id)] == ["alice"]


def test_concurrent_writers_that_both_read_first(
    crm_a: Crm, crm_b: Crm, customer_id: int, backend: str
) -> None:
    """Two transactions both read version 1, then both update (no expected_version).

    PostgreSQL and MariaDB: both reads happen while both transactions are open; the
    version column makes the second UPDATE match no row, so the loser gets Conflict and
    its write is not lost silently over the winner's. SQLite serialises whole write
    transactions, so the second one cannot read until the first has committed: it reads
    version 2 and its update lands on top of the first, which is not lost either.
    """
    a_read = threading.Event()
    b_read = threading.Event()
    a_wrote = threading.Event()
    seen: dict[str, int] = {}
    serialised = backend == "sqlite"

    def alice() -> None:
        with crm_a.transaction(actor="alice") as tx:
            customer = tx.customers.get(customer_id)
            seen["alice"] = customer.version
            a_read.set()
            if not serialised:
                assert b_read.wait(TIMEOUT)
            tx.customers.update(customer, name="Alice's")
            a_wrote.set()
            time.sleep(HOLD)

    def bob() -> None:
        assert a_read.wait(TIMEOUT)
        with crm_b.transaction(actor="bob") as tx:
            customer = tx.customers.get(customer_id)
            seen["bob"] = customer.version
            b_read.set()
            assert a_wrote.wait(TIMEOUT)
            tx.customers.update(customer, name="Bob's")

    outcome = run_threads(alice, bob)
    assert outcome["alice"] is None
    after = stored(crm_a, customer_id)
    entries = updates(crm_a, customer_id)
    if serialised:
        assert seen == {"alice": 1, "bob": 2}
        assert outcome["bob"] is None
        assert (after.name, after.version) == ("Bob's", 3)
        assert [(e.actor, e.changes["before"]["name"]) for e in entries] == [
            ("alice", "Acme"), ("bob", "Alice's")
        ]
    else:
        assert seen == {"alice": 1, "bob": 1}
        assert isinstance(outcome["bob"], Conflict), outcome["bob"]
        assert str(outcome["bob"]) == (
            "the record was changed by a concurrent transaction; nothing was written, "
            "reload and retry"
        )
        assert (after.name, after.version) == ("Alice's", 2)
        assert [e.actor for e in entries] == ["alice"]


def test_conflict_rolls_back_everything_in_the_losing_transaction(
    crm_a: Crm, crm_b: Crm, customer_id: int
) -> None:
    with crm_a.transaction(actor="alice") as tx:
        tx.customers.update(customer_id, name="Alice's")
    with crm_b.session() as session:
        customers_before = session.scalar(select(func.count()).select_from(Customer))
    events_before = outbox_count(crm_b)
    with pytest.raises(Conflict), crm_b.transaction(actor="bob") as tx:
        other = tx.customers.create(kind="person", name="Written first")
        tx.interactions.log(other, channel="phone", kind="note", summary="also first")
        tx.customers.update(customer_id, expected_version=1, name="Bob's")
    with crm_b.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == customers_before
    assert outbox_count(crm_b) == events_before
