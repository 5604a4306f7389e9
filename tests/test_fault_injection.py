"""Fault injection: whatever fails, and wherever, the database is left exactly as it was.

A customer create (tags, an external reference, a logged interaction, all in one
transaction) is run once to count its SQL statements; then, for every N, a
``before_cursor_execute`` listener makes statement N fail and the test compares every
kernel table, row by row, with its state before. Also: a plugin that raises inside the
transaction, and a connection that dies under a running transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select, text

from crmkit import Crm, CrmkitError, PluginError, Rejected, StorageError, hookimpl
from crmkit.db import Base
from crmkit.testing import backend_name

KERNEL_TABLES = (
    "customer", "customer_tag", "customer_contact", "external_ref", "interaction",
    "audit_entry", "outbox_event", "plugin_state",
)
WORKER = {"events": {"dispatch": "worker"}}


class InjectedFault(RuntimeError):
    """The fault the tests inject: not a database error, a bug anywhere below crmkit."""


Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot(crm: Crm) -> Snapshot:
    """Every row of every kernel table, in primary-key order, on a connection of its own."""
    rows: Snapshot = {}
    with crm.engine.connect() as conn:
        for name in KERNEL_TABLES:
            table = Base.metadata.tables[name]
            query = select(table).order_by(*table.primary_key.columns)
            rows[name] = [tuple(row) for row in conn.execute(query)]
    return rows


@contextmanager
def failing_statement(
    crm: Crm, n: int, make_error: Callable[[], BaseException]
) -> Iterator[list[str]]:
    """Make the ``n``-th SQL statement on ``crm.engine`` raise; yields the statements seen."""
    seen: list[str] = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)
        if len(seen) == n:
            raise make_error()

    event.listen(crm.engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield seen
    finally:
        event.remove(crm.engine, "before_cursor_execute", before_cursor_execute)


def create_everything(crm: Crm, key: str) -> None:
    with crm.transaction(actor="alice") as tx:
        customer = tx.customers.create(
            kind="organization", name=f"Acme {key}", email=f"{key}@acme.example",
            tags=["vip", "b2b"], external_refs={"sap": f"BP-{key}"},
        )
        tx.interactions.log(customer, channel="phone", kind="purchase", summary="Order",
                            amount="99.95", currency="EUR")


@pytest.fixture
def seeded(crm_factory) -> Crm:
    crm = crm_factory(config=WORKER)
    create_everything(crm, "seed")  # the snapshot is never trivially empty
    return crm


def count_statements(crm: Crm) -> int:
    with failing_statement(crm, 0, InjectedFault) as seen:
        create_everything(crm, "counted")
    return len(seen)


def dbapi_operational_error(crm: Crm) -> Callable[[], BaseException]:
    """A driver-level OperationalError (what a failing server raises) for this backend."""
    dbapi = crm.engine.dialect.loaded_dbapi
    return lambda: dbapi.OperationalError("injected: the server went away")


@pytest.mark.parametrize("fault", ["exception", "operational_error"])
def test_every_statement_of_a_create_can_fail_and_nothing_is_written(
    seeded: Crm, fault: str
) -> None:
    total = count_statements(seeded)
    assert total >= 8, f"a create with tags, a reference and an interaction ran {total} statements"
    make_error = InjectedFault if fault == "exception" else dbapi_operational_error(seeded)

    for n in range(1, total + 1):
        before = snapshot(seeded)
        with failing_statement(seeded, n, make_error) as seen, \
                pytest.raises((InjectedFault, CrmkitError)) as info:
            create_everything(seeded, f"n{n}")
        where = f"statement {n} of {total}: {seen[-1][:80]!r}"
        assert snapshot(seeded) == before, f"half-written state after a fault in {where}"
        if fault == "exception":
            assert isinstance(info.value, InjectedFault), where
        else:
            assert isinstance(info.value, StorageError), f"{where}: {info.value!r}"
            assert str(info.value).startswith("the database failed (injected: the server "
                                              "went away"), where
            assert "nothing was written" in str(info.value), where

    # The statement count was right: one more than there are statements fails nothing.
    before = snapshot(seeded)
    with failing_statement(seeded, total + 1, make_error):
        create_everything(seeded, "complete")
    after = snapshot(seeded)
    assert len(after["customer"]) == len(before["customer"]) + 1
    assert len(after["outbox_event"]) == len(before["outbox_event"]) + 2
    # No connection was leaked by the failures.
    assert seeded.engine.pool.checkedout() == 0


def test_a_failing_commit_writes_nothing(seeded: Crm) -> None:
    before = snapshot(seeded)

    def commit(conn) -> None:
        raise InjectedFault("commit refused")

    event.listen(seeded.engine, "commit", commit)
    try:
        with pytest.raises(InjectedFault, match="commit refused"):
            create_everything(seeded, "uncommitted")
    finally:
        event.remove(seeded.engine, "commit", commit)
    assert snapshot(seeded) == before
    assert seeded.engine.pool.checkedout() == 0
    create_everything(seeded, "afterwards")  # the deployment still works


# -- plugins that fail inside the transaction ---------------------------------------------


class WritesThenFails:
    """Writes through the transaction in two hooks, then fails in the last one."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    @hookimpl
    def customer_created(self, tx, customer) -> None:
        tx.customers.add_external_ref(customer, "plugin", f"P-{customer.id}")
        tx.emit("faulty.customer_seen", {"customer_id": customer.id})

    @hookimpl
    def interaction_logged(self, tx, interaction) -> None:
        tx.audit("interaction", interaction.id, "inspect", {"after": {"ok": False}})
        raise self.error


def test_a_plugin_that_raises_mid_transaction_leaves_nothing(crm_factory) -> None:
    crm = crm_factory(plugins={"faulty": WritesThenFails(KeyError("missing"))}, config=WORKER)
    before = snapshot(crm)
    with pytest.raises(PluginError) as info:
        create_everything(crm, "plugin")
    assert (info.value.plugin, info.value.hook) == ("faulty", "interaction_logged")
    assert str(info.value) == (
        "plugin 'faulty' failed in hook 'interaction_logged': KeyError: 'missing'"
    )
    assert snapshot(crm) == before


def test_a_plugin_that_rejects_mid_transaction_leaves_nothing(crm_factory) -> None:
    crm = crm_factory(plugins={"faulty": WritesThenFails(Rejected("no orders on Sundays"))},
                      config=WORKER)
    before = snapshot(crm)
    with pytest.raises(Rejected) as info:
        create_everything(crm, "rejected")
    assert (info.value.plugin, info.value.hook) == ("faulty", "interaction_logged")
    assert "no orders on Sundays" in str(info.value)
    assert snapshot(crm) == before


# -- a connection that dies under a transaction -------------------------------------------


def kill_connection(crm: Crm, tx: Any) -> None:
    """Sever the connection ``tx`` runs on, the way an outage or an admin would."""
    backend = backend_name(crm.config.database_url)
    conn = tx.session.connection()
    if backend == "postgresql":
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with crm.engine.connect() as other:
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"),
                                 {"pid": pid}).scalar_one()
    elif backend == "mariadb":
        connection_id = int(conn.execute(text("SELECT CONNECTION_ID()")).scalar_one())
        with crm.engine.connect() as other:
            other.execute(text(f"KILL CONNECTION {connection_id}"))
    else:  # SQLite is in-process: its connection is lost when its handle is closed.
        conn.connection.dbapi_connection.close()


@pytest.mark.parametrize("when", ["mid_transaction", "before_commit"])
def test_a_dropped_connection_surfaces_as_storage_error(crm_factory, when: str) -> None:
    crm = crm_factory(config=WORKER)
    create_everything(crm, "seed")
    before = snapshot(crm)
    with pytest.raises(StorageError) as info, crm.transaction(actor="alice") as tx:
        customer = tx.customers.create(kind="organization", name="Doomed", tags=["x"],
                                       external_refs={"sap": "DOOMED"})
        if when == "mid_transaction":
            kill_connection(crm, tx)
            tx.interactions.log(customer, channel="phone", kind="note", summary="lost")
        else:
            tx.interactions.log(customer, channel="phone", kind="note", summary="lost")
            tx.session.flush()
            kill_connection(crm, tx)
    message = str(info.value)
    if when == "mid_transaction":
        assert message.startswith("the database failed (") or message.startswith(
            "the database connection was lost ("), message
        assert message.endswith("; nothing was written"), message
    else:
        # The COMMIT itself failed: a client cannot know whether the server applied it
        # before the connection went, so it must not claim that nothing was written.
        assert message.startswith("the database connection was lost while committing ("), \
            message
        assert message.endswith("the change may or may not have been written: check before "
                                "retrying"), message
    assert len(message) < 1000
    assert snapshot(crm) == before
    # The pool replaced the dead connection: the deployment keeps working.
    create_everything(crm, "after")
    assert len(snapshot(crm)["customer"]) == len(before["customer"]) + 1
