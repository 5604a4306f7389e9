"""Interactions: logging, the timeline (order, ties, paging, kinds), money and time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from crmkit import Crm, NotFound, ValidationError
from crmkit.db import Money
from crmkit.models import AuditEntry, Interaction, OutboxEvent

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def worker_crm(crm_factory) -> Crm:
    return crm_factory(config={"events": {"dispatch": "worker"}})


@pytest.fixture
def customer_id(worker_crm: Crm) -> int:
    with worker_crm.transaction() as tx:
        return tx.customers.create(kind="organization", name="Acme").id


def log(crm: Crm, customer_id: int, **fields) -> int:
    fields.setdefault("channel", "phone")
    fields.setdefault("kind", "note")
    fields.setdefault("summary", "a note")
    with crm.transaction() as tx:
        return tx.interactions.log(customer_id, **fields).id


def test_log_and_get_round_trip(worker_crm: Crm, customer_id: int) -> None:
    when = dt.datetime(2026, 3, 1, 15, 0, 0, 654321, tzinfo=dt.timezone(dt.timedelta(hours=5,
                                                                                     minutes=30)))
    with worker_crm.transaction(actor="alice") as tx:
        logged = tx.interactions.log(
            customer_id, channel="email", direction="outbound", kind="offer",
            summary="  Quote 42 sent ", occurred_at=when, payload={"quote": 42, "lines": [1, 2]},
        )
        interaction_id = logged.id
    with worker_crm.transaction() as tx:
        stored = tx.interactions.get(interaction_id)
    assert (stored.customer_id, stored.channel, stored.direction, stored.kind, stored.summary) == (
        customer_id, "email", "outbound", "offer", "Quote 42 sent"
    )
    assert stored.payload == {"quote": 42, "lines": [1, 2]}
    assert stored.actor == "alice"  # the transaction's actor by default
    assert stored.amount is None and stored.currency is None
    # The same instant, returned in UTC, microseconds intact (MariaDB: DATETIME(6)).
    assert stored.occurred_at == when
    assert stored.occurred_at.tzinfo is not None
    assert stored.occurred_at.utcoffset() == dt.timedelta(0)
    assert stored.occurred_at.isoformat() == "2026-03-01T09:30:00.654321+00:00"
    assert stored.to_dict() == logged.to_dict()


def test_occurred_at_defaults_to_now_and_accepts_iso_strings(
    worker_crm: Crm, customer_id: int
) -> None:
    before = dt.datetime.now(UTC)
    now_id = log(worker_crm, customer_id)
    after = dt.datetime.now(UTC)
    zulu_id = log(worker_crm, customer_id, occurred_at="2026-01-02T03:04:05.000006Z")
    offset_id = log(worker_crm, customer_id, occurred_at="2026-01-02T05:04:05+02:00")
    with worker_crm.transaction() as tx:
        assert before <= tx.interactions.get(now_id).occurred_at <= after
        assert tx.interactions.get(zulu_id).occurred_at == dt.datetime(
            2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
        assert tx.interactions.get(offset_id).occurred_at == dt.datetime(
            2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_explicit_actor(worker_crm: Crm, customer_id: int) -> None:
    interaction_id = log(worker_crm, customer_id, actor="sap-connector")
    with worker_crm.transaction() as tx:
        assert tx.interactions.get(interaction_id).actor == "sap-connector"


@pytest.mark.parametrize(
    ("amount", "stored"),
    [
        (Decimal("19.99"), Decimal("19.99")),
        ("19.99", Decimal("19.99")),
        (5, Decimal("5")),
        ("-3.5", Decimal("-3.5")),  # a refund
        (Decimal("0.0001"), Decimal("0.0001")),
        # 18 significant digits: a float (SQLite's REAL) would return ...5684.
        ("12345678901234.5678", Decimal("12345678901234.5678")),
        ("-99999999999999.9999", Decimal("-99999999999999.9999")),
    ],
)
def test_amounts_are_exact_decimals(
    worker_crm: Crm, customer_id: int, amount: object, stored: Decimal
) -> None:
    interaction_id = log(worker_crm, customer_id, kind="purchase", amount=amount,
                         currency="EUR")
    with worker_crm.transaction() as tx:
        interaction = tx.interactions.get(interaction_id)
        assert isinstance(interaction.amount, Decimal)
        assert interaction.amount == stored
        assert interaction.currency == "EUR"
        # Comparisons in SQL are exact too.
        found = tx.session.scalars(
            select(Interaction.id).where(Interaction.amount == stored)
        ).all()
        assert found == [interaction_id]


def test_aggregates_of_amounts(worker_crm: Crm, customer_id: int) -> None:
    for amount in ("0.1", "0.2", "12345678901234.0001"):
        log(worker_crm, customer_id, kind="purchase", amount=amount, currency="EUR")
    with worker_crm.transaction() as tx:
        total, low, high = tx.session.execute(select(
            func.sum(Interaction.amount), func.min(Interaction.amount),
            func.max(Interaction.amount))).one()
        small = tx.session.scalar(select(func.avg(Interaction.amount, type_=Money))
                                  .where(Interaction.amount < 1))
    assert (total, low, high) == (Decimal("12345678901234.3001"), Decimal("0.1"),
                                  Decimal("12345678901234.0001"))
    assert all(isinstance(v, Decimal) for v in (total, low, high, small))
    assert small == Decimal("0.15")


def test_log_writes_audit_and_event(worker_crm: Crm, customer_id: int) -> None:
    with worker_crm.transaction(actor="alice") as tx:
        interaction = tx.interactions.log(
            customer_id, channel="web", kind="purchase", summary="Order 7",
            amount=Decimal("10.50"), currency="EUR", occurred_at=T0,
        )
    with worker_crm.session() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.entity == "interaction"))
        [event] = session.scalars(
            select(OutboxEvent).where(OutboxEvent.name == "interaction.logged"))
    assert (entry.actor, entry.action, entry.entity_id) == ("alice", "create", str(interaction.id))
    assert entry.changes["after"]["summary"] == "Order 7"
    assert entry.changes["after"]["amount"] == "10.50"
    assert entry.changes["after"]["occurred_at"] == T0.isoformat()
    assert event.payload["interaction_id"] == interaction.id
    assert event.payload["customer_id"] == customer_id
    assert event.payload["interaction"]["amount"] == "10.50"
    assert event.payload["interaction"]["currency"] == "EUR"


def test_log_for_unknown_customer(worker_crm: Crm) -> None:
    with worker_crm.transaction() as tx, pytest.raises(NotFound, match="no customer with id 999"):
        tx.interactions.log(999, channel="phone", kind="note", summary="x")


# -- the timeline ---------------------------------------------------------------------------


@pytest.fixture
def timeline(worker_crm: Crm, customer_id: int) -> dict[str, int]:
    """Seven interactions; three share one instant, logged out of time order."""
    spec = [
        ("a", T0, "note"),
        ("b", T0 + dt.timedelta(days=2), "purchase"),
        ("c", T0 + dt.timedelta(days=1), "note"),
        ("d", T0 + dt.timedelta(days=1), "complaint"),  # tie with c
        ("e", T0 + dt.timedelta(days=1), "note"),  # tie with c and d
        ("f", T0 - dt.timedelta(microseconds=1), "complaint"),  # one microsecond before a
        ("g", T0 + dt.timedelta(microseconds=1), "note"),  # one microsecond after a
    ]
    ids = {}
    with worker_crm.transaction() as tx:
        for summary, when, kind in spec:
            ids[summary] = tx.interactions.log(
                customer_id, channel="phone", kind=kind, summary=summary, occurred_at=when
            ).id
        other = tx.customers.create(kind="person", name="Other")
        tx.interactions.log(other, channel="phone", kind="note", summary="other's",
                            occurred_at=T0 + dt.timedelta(days=9))
    return ids


EXPECTED = ["b", "e", "d", "c", "g", "a", "f"]  # occurred_at desc, then id desc


def test_timeline_order(worker_crm: Crm, customer_id: int, timeline: dict[str, int]) -> None:
    with worker_crm.transaction() as tx:
        rows = tx.interactions.timeline(customer_id)
    assert [i.summary for i in rows] == EXPECTED


@pytest.mark.parametrize("page_size", [1, 2, 3, 7])
def test_timeline_paging_with_before(
    worker_crm: Crm, customer_id: int, timeline: dict[str, int], page_size: int
) -> None:
    seen: list[str] = []
    before = None
    with worker_crm.transaction() as tx:
        for _ in range(10):
            page = tx.interactions.timeline(customer_id, limit=page_size, before=before)
            if not page:
                break
            seen += [i.summary for i in page]
            before = (page[-1].occurred_at, page[-1].id)
    assert seen == EXPECTED


def test_timeline_kinds_filter(worker_crm: Crm, customer_id: int, timeline: dict[str, int]) -> None:
    with worker_crm.transaction() as tx:
        complaints = tx.interactions.timeline(customer_id, kinds=["complaint"])
        mixed = tx.interactions.timeline(customer_id, kinds=["complaint", "purchase"], limit=2)
        rest = tx.interactions.timeline(
            customer_id, kinds=["complaint", "purchase"],
            before=(mixed[-1].occurred_at, mixed[-1].id),
        )
        none = tx.interactions.timeline(customer_id, kinds=["feedback"])
    assert [i.summary for i in complaints] == ["d", "f"]
    assert [i.summary for i in mixed] == ["b", "d"]
    assert [i.summary for i in rest] == ["f"]
    assert none == []


def test_timeline_of_customer_object_and_errors(
    worker_crm: Crm, customer_id: int, timeline: dict[str, int]
) -> None:
    with worker_crm.transaction() as tx:
        customer = tx.customers.get(customer_id)
        assert len(tx.interactions.timeline(customer)) == 7
        with pytest.raises(NotFound, match="no customer with id 987654"):
            tx.interactions.timeline(987654)
        with pytest.raises(ValidationError, match="limit: must be between 1 and 1000"):
            tx.interactions.timeline(customer, limit=0)
