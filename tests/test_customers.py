"""Customers: create, read, update, find, external references, contacts, audit and outbox.

Every test runs on SQLite and on each server in ``CRMKIT_TEST_DATABASE_URLS``; reads that
check what was stored use a new transaction (a fresh session), never the writer's objects.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

import crmkit
from crmkit import Conflict, Crm, NotFound, ValidationError
from crmkit.db import Base
from crmkit.models import (
    AuditEntry,
    Customer,
    OutboxEvent,
    WorkflowInstance,
    WorkflowStep,
)

KERNEL_TABLES = (
    "customer", "customer_tag", "customer_contact", "external_ref", "interaction",
    "audit_entry", "outbox_event",
)


def row_counts(crm: Crm) -> dict[str, int]:
    with crm.engine.connect() as conn:
        return {
            name: conn.execute(
                select(func.count()).select_from(Base.metadata.tables[name])
            ).scalar_one()
            for name in KERNEL_TABLES
        }


def events(crm: Crm, name: str | None = None) -> list[OutboxEvent]:
    with crm.session() as session:
        query = select(OutboxEvent).order_by(OutboxEvent.id)
        if name:
            query = query.where(OutboxEvent.name == name)
        return list(session.scalars(query))


def audit(crm: Crm, entity_id: int, entity: str = "customer") -> list[AuditEntry]:
    with crm.session() as session:
        return list(session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.id)
        ))


def names(page_items: list[Customer]) -> list[str]:
    return [c.name for c in page_items]


@pytest.fixture
def worker_crm(crm_factory) -> Crm:
    """Events stay pending, so the outbox can be inspected exactly as the change wrote it."""
    return crm_factory(config={"events": {"dispatch": "worker"}})


# -- create and get -------------------------------------------------------------------------


def test_create_and_get_round_trip(worker_crm: Crm) -> None:
    before = dt.datetime.now(dt.UTC)
    with worker_crm.transaction(actor="alice") as tx:
        created = tx.customers.create(
            kind="organization", name="  Acme GmbH ", email=" Info@ACME.example ",
            phone="+49 30 1234567", roles=["customer", "partner"], status="prospect",
            addresses=[{"kind": "billing", "street": "Hauptstr. 1", "city": "Berlin",
                        "postal_code": "10115", "country": "DE"}],
            owner="bob", tags=["vip", "b2b"], attributes={},
        )
        customer_id = created.id
    after = dt.datetime.now(dt.UTC)

    with worker_crm.transaction() as tx:
        stored = tx.customers.get(customer_id)
        data = stored.to_dict()
    assert data["kind"] == "organization"
    assert data["name"] == "Acme GmbH"
    assert data["email"] == "info@acme.example"
    assert data["phone"] == "+49 30 1234567"
    assert data["roles"] == ["customer", "partner"]
    assert data["status"] == "prospect"
    assert data["addresses"] == [{"kind": "billing", "street": "Hauptstr. 1", "city": "Berlin",
                                  "postal_code": "10115", "country": "DE"}]
    assert data["owner"] == "bob"
    assert data["tags"] == ["b2b", "vip"]
    assert data["attributes"] == {}
    assert data["version"] == 1
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == dt.timedelta(0)
    assert before <= stored.created_at <= after
    # Microseconds survive on every backend (MariaDB only with DATETIME(6)).
    assert stored.created_at == created.created_at
    assert stored.updated_at == stored.created_at
    # The writer's in-memory view agrees with what was stored (tags in stored order).
    assert created.to_dict() == data


def test_defaults(crm: Crm) -> None:
    with crm.transaction() as tx:
        customer_id = tx.customers.create(kind="person", name="Ann").id
    with crm.transaction() as tx:
        data = tx.customers.get(customer_id).to_dict()
    assert (data["roles"], data["status"], data["email"], data["tags"], data["addresses"]) == (
        ["customer"], "active", None, [], []
    )


def test_get_unknown_and_wrong_type(crm: Crm) -> None:
    with crm.transaction() as tx:
        with pytest.raises(NotFound, match="no customer with id 424242"):
            tx.customers.get(424242)
        with pytest.raises(ValidationError, match=r"id: must be an integer, got '1'"):
            tx.customers.get("1")  # type: ignore[arg-type]


def test_create_writes_audit_and_outbox_in_the_same_transaction(worker_crm: Crm) -> None:
    with worker_crm.transaction(actor="alice") as tx:
        customer = tx.customers.create(
            kind="organization", name="Acme", email="a@acme.example", tags=["vip"],
            external_refs={"sap": "BP-1"},
        )
        customer_id = customer.id
        # Inside the transaction the rows exist for this session...
        assert tx.audit_log.list(entity="customer", entity_id=customer_id)
    entries = audit(worker_crm, customer_id)
    assert [(e.action, e.actor) for e in entries] == [("link", "alice"), ("create", "alice")]
    create = entries[1].changes["after"]
    assert create["name"] == "Acme" and create["email"] == "a@acme.example"
    assert create["tags"] == ["vip"]
    assert entries[0].changes == {"after": {"external_ref": {"system": "sap",
                                                             "external_id": "BP-1"}}}
    created = events(worker_crm, "customer.created")
    assert len(created) == 1
    assert created[0].payload["customer_id"] == customer_id
    assert created[0].payload["customer"]["name"] == "Acme"
    assert created[0].actor == "alice"
    assert created[0].status == "pending"


def test_rollback_writes_nothing(worker_crm: Crm) -> None:
    before = row_counts(worker_crm)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), worker_crm.transaction(actor="alice") as tx:
        customer = tx.customers.create(kind="organization", name="Gone", tags=["x"],
                                       external_refs={"sap": "GONE"})
        tx.interactions.log(customer, channel="phone", kind="note", summary="hello")
        raise Abort
    assert row_counts(worker_crm) == before


# -- list and filters -----------------------------------------------------------------------


@pytest.fixture
def directory(crm: Crm) -> Crm:
    with crm.transaction() as tx:
        tx.customers.create(kind="organization", name="Acme GmbH", email="info@acme.example",
                            tags=["vip", "b2b"], status="active")
        tx.customers.create(kind="person", name="Ann ACMEson", email="Ann@Example.org",
                            tags=["b2c"], status="prospect")
        tx.customers.create(kind="person", name="Bob Builder", email="bob@example.org",
                            tags=["vip"], status="inactive")
        tx.customers.create(kind="organization", name="MÜLLER Söhne KG",
                            email="kontakt@mueller.example", tags=["b2b"], status="active")
        tx.customers.create(kind="organization", name="Globex", status="archived")
    return crm


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["Acme GmbH", "Ann ACMEson", "Bob Builder", "MÜLLER Söhne KG", "Globex"]),
        ({"name": "acme"}, ["Acme GmbH", "Ann ACMEson"]),
        ({"name": "ACME"}, ["Acme GmbH", "Ann ACMEson"]),
        ({"name": "gmbh"}, ["Acme GmbH"]),
        ({"name": "müller"}, ["MÜLLER Söhne KG"]),  # Unicode case folding on every backend
        ({"name": "SÖHNE"}, ["MÜLLER Söhne KG"]),
        ({"name": "nobody"}, []),
        ({"email": "ANN@example.ORG"}, ["Ann ACMEson"]),
        ({"email": " bob@example.org "}, ["Bob Builder"]),
        ({"email": "example.org"}, []),  # an exact address, not a substring
        ({"tag": "vip"}, ["Acme GmbH", "Bob Builder"]),
        ({"tag": "b2b"}, ["Acme GmbH", "MÜLLER Söhne KG"]),
        ({"tag": "VIP"}, []),  # tags are case-sensitive
        ({"status": "active"}, ["Acme GmbH", "MÜLLER Söhne KG"]),
        ({"status": "archived"}, ["Globex"]),
        ({"kind": "person"}, ["Ann ACMEson", "Bob Builder"]),
        ({"kind": "organization", "tag": "b2b", "name": "acme"}, ["Acme GmbH"]),
        ({"kind": "person", "status": "active"}, []),
    ],
)
def test_list_filters(directory: Crm, filters: dict[str, str], expected: list[str]) -> None:
    with directory.transaction() as tx:
        page = tx.customers.list(**filters)
    assert names(page.items) == expected
    assert page.next_after is None


def test_find_by_email_is_case_insensitive(directory: Crm) -> None:
    with directory.transaction() as tx:
        assert names(tx.customers.find_by_email("INFO@Acme.Example")) == ["Acme GmbH"]
        assert tx.customers.find_by_email("nobody@acme.example") == []


def test_keyset_pagination(crm: Crm) -> None:
    with crm.transaction() as tx:
        ids = [tx.customers.create(kind="person", name=f"P{i}", tags=["t"]).id
               for i in range(7)]
        tx.customers.create(kind="organization", name="Other")  # filtered out below

    seen: list[int] = []
    afters: list[int | None] = []
    after = None
    with crm.transaction() as tx:
        while True:
            page = tx.customers.list(tag="t", limit=3, after=after)
            seen += [c.id for c in page.items]
            afters.append(page.next_after)
            if page.next_after is None:
                break
            assert page.next_after == page.items[-1].id
            after = page.next_after
    assert seen == ids  # every customer once, in id order
    assert afters == [ids[2], ids[5], None]

    with crm.transaction() as tx:  # a last page that is exactly full has no next page
        assert tx.customers.list(tag="t", limit=7).next_after is None
        assert tx.customers.list(tag="t", limit=6).next_after == ids[5]
        assert tx.customers.list(tag="t", after=ids[-1]).items == []


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_list_limit_is_bounded(crm: Crm, limit: int) -> None:
    with crm.transaction() as tx, pytest.raises(ValidationError) as info:
        tx.customers.list(limit=limit)
    assert info.value.issues[0].path == "limit"
    assert "between 1 and 1000" in str(info.value)


# -- update ----------------------------------------------------------------------------------


def test_update_changes_fields_and_writes_audit_and_event(worker_crm: Crm) -> None:
    with worker_crm.transaction(actor="alice") as tx:
        customer = tx.customers.create(kind="person", name="Ann", email="ann@example.org",
                                       tags=["a"])
    created_at = customer.created_at

    with worker_crm.transaction(actor="bob") as tx:
        updated = tx.customers.update(customer.id, expected_version=1, name="Ann Smith",
                                      email="ANN.SMITH@example.org", tags=["b", "a"])
        assert updated.version == 2

    with worker_crm.transaction() as tx:
        stored = tx.customers.get(customer.id)
        assert (stored.name, stored.email, stored.tags, stored.version) == (
            "Ann Smith", "ann.smith@example.org", ["a", "b"], 2
        )
        assert stored.created_at == created_at
        assert stored.updated_at > created_at
        assert names(tx.customers.list(tag="b").items) == ["Ann Smith"]

    entries = audit(worker_crm, customer.id)
    assert [(e.action, e.actor) for e in entries] == [("create", "alice"), ("update", "bob")]
    assert entries[1].changes == {
        "before": {"name": "Ann", "email": "ann@example.org", "tags": ["a"]},
        "after": {"name": "Ann Smith", "email": "ann.smith@example.org", "tags": ["a", "b"]},
    }
    [event] = events(worker_crm, "customer.updated")
    assert event.actor == "bob"
    assert event.payload == {
        "customer_id": customer.id,
        "changes": {
            "name": {"before": "Ann", "after": "Ann Smith"},
            "email": {"before": "ann@example.org", "after": "ann.smith@example.org"},
            "tags": {"before": ["a"], "after": ["a", "b"]},
        },
    }


def test_update_without_change_writes_nothing(worker_crm: Crm) -> None:
    with worker_crm.transaction() as tx:
        customer_id = tx.customers.create(kind="person", name="Ann", tags=["b", "a"]).id
    before = row_counts(worker_crm)
    with worker_crm.transaction() as tx:
        # The same values, tags in another order: not a change.
        same = tx.customers.update(customer_id, name=" Ann ", tags=["a", "b"])
        assert same.version == 1
    assert row_counts(worker_crm) == before


def test_update_a_customer_read_in_an_earlier_transaction(worker_crm: Crm) -> None:
    with worker_crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Ann")
    # `customer` belongs to a closed session; the update must still reach the database.
    with worker_crm.transaction() as tx:
        tx.customers.update(customer, name="Ann B")
    with worker_crm.transaction() as tx:
        assert tx.customers.get(customer.id).name == "Ann B"
        assert tx.customers.get(customer.id).version == 2
    # The object still says version 1: updating it again is a stale write.
    before = row_counts(worker_crm)
    with pytest.raises(Conflict, match="at version 2, you had version 1"), \
            worker_crm.transaction() as tx:
        tx.customers.update(customer, name="Ann C")
    assert row_counts(worker_crm) == before


def test_update_unknown_field_is_refused(worker_crm: Crm) -> None:
    with worker_crm.transaction() as tx:
        customer_id = tx.customers.create(kind="person", name="Ann").id
    before = row_counts(worker_crm)
    with pytest.raises(ValidationError) as info, worker_crm.transaction() as tx:
        tx.customers.update(customer_id, nmae="Typo", version=7)
    assert [i.path for i in info.value.issues] == ["nmae", "version"]
    assert f"customer {customer_id}" in str(info.value)
    assert "unknown field" in str(info.value)
    assert row_counts(worker_crm) == before


def test_update_validates_the_merged_record(worker_crm: Crm) -> None:
    with worker_crm.transaction() as tx:
        customer_id = tx.customers.create(kind="person", name="Ann").id
    before = row_counts(worker_crm)
    with pytest.raises(ValidationError) as info, worker_crm.transaction() as tx:
        tx.customers.update(customer_id, email="not an address", tags="vip")
    assert sorted(i.path for i in info.value.issues) == ["email", "tags"]
    assert row_counts(worker_crm) == before


# -- external references ----------------------------------------------------------------------


def test_external_refs(crm: Crm) -> None:
    with crm.transaction() as tx:
        acme = tx.customers.create(kind="organization", name="Acme",
                                   external_refs={"sap": "BP-1", "tryton": "17"})
        globex = tx.customers.create(kind="organization", name="Globex")
        # The same id in another system is a different reference.
        tx.customers.add_external_ref(globex, "shop", "BP-1")
    with crm.transaction() as tx:
        assert tx.customers.find_by_external_ref("sap", "BP-1").id == acme.id
        assert tx.customers.find_by_external_ref("shop", "BP-1").id == globex.id
        assert tx.customers.find_by_external_ref("sap", "bp-1") is None
        assert tx.customers.find_by_external_ref("sap", "BP-2") is None
        assert tx.customers.external_refs(acme) == {"sap": "BP-1", "tryton": "17"}


def test_duplicate_external_ref_raises_conflict_and_writes_nothing(crm: Crm) -> None:
    with crm.transaction() as tx:
        acme_id = tx.customers.create(kind="organization", name="Acme",
                                      external_refs={"sap": "BP-1"}).id
    before = row_counts(crm)
    with pytest.raises(Conflict) as info, crm.transaction() as tx:
        tx.customers.create(kind="organization", name="Acme again", tags=["x"],
                            external_refs={"tryton": "5", "sap": "BP-1"})
    assert str(info.value) == f"sap id 'BP-1' already belongs to customer {acme_id}"
    assert row_counts(crm) == before


def test_refused_duplicate_leaves_no_half_customer_when_caught(crm: Crm) -> None:
    """An import that skips rejected records inside one transaction must not commit a
    customer without the reference that was refused."""
    with crm.transaction() as tx:
        tx.customers.create(kind="organization", name="Acme", external_refs={"sap": "BP-1"})
    before = row_counts(crm)
    with crm.transaction() as tx, pytest.raises(Conflict):  # caught inside the transaction
        tx.customers.create(kind="organization", name="Duplicate", tags=["x"],
                            external_refs={"sap": "BP-1"})
    assert row_counts(crm) == before
    with crm.transaction() as tx:
        assert tx.customers.list(name="Duplicate").items == []


def test_add_duplicate_external_ref_to_existing_customer(crm: Crm) -> None:
    with crm.transaction() as tx:
        tx.customers.create(kind="organization", name="Acme", external_refs={"sap": "BP-1"})
        globex_id = tx.customers.create(kind="organization", name="Globex").id
    before = row_counts(crm)
    with pytest.raises(Conflict, match="sap id 'BP-1' already belongs"), \
            crm.transaction() as tx:
        tx.customers.add_external_ref(tx.customers.get(globex_id), "sap", "BP-1")
    assert row_counts(crm) == before


# -- contacts ---------------------------------------------------------------------------------


def test_contacts(worker_crm: Crm) -> None:
    with worker_crm.transaction(actor="alice") as tx:
        acme = tx.customers.create(kind="organization", name="Acme")
        zoe = tx.customers.create(kind="person", name="Zoe")
        adam = tx.customers.create(kind="person", name="Adam")
        tx.customers.add_contact(acme, zoe, role="buyer")
        tx.customers.add_contact(acme, adam)
    with worker_crm.transaction() as tx:
        contacts = tx.customers.contacts(tx.customers.get(acme.id))
        assert [(c.name, role) for c, role in contacts] == [("Adam", "contact"), ("Zoe", "buyer")]
        assert tx.customers.contacts(tx.customers.get(zoe.id)) == []
    actions = [(e.action, e.changes) for e in audit(worker_crm, acme.id)]
    assert actions[1:] == [
        ("add_contact", {"after": {"person_id": zoe.id, "role": "buyer"}}),
        ("add_contact", {"after": {"person_id": adam.id, "role": "contact"}}),
    ]
    added = events(worker_crm, "customer.contact_added")
    assert [e.payload for e in added] == [
        {"organization_id": acme.id, "person_id": zoe.id, "role": "buyer"},
        {"organization_id": acme.id, "person_id": adam.id, "role": "contact"},
    ]


def test_contacts_refused(crm: Crm) -> None:
    with crm.transaction() as tx:
        acme = tx.customers.create(kind="organization", name="Acme")
        globex = tx.customers.create(kind="organization", name="Globex")
        zoe = tx.customers.create(kind="person", name="Zoe")
        tx.customers.add_contact(acme, zoe, role="buyer")
    before = row_counts(crm)
    with pytest.raises(ValidationError, match="contacts link a person to an organization"), \
            crm.transaction() as tx:
        tx.customers.add_contact(zoe, acme)
    with pytest.raises(ValidationError, match="contacts link a person to an organization"), \
            crm.transaction() as tx:
        tx.customers.add_contact(acme, globex)
    with pytest.raises(ValidationError, match="role: must be a string of 1 to 100"), \
            crm.transaction() as tx:
        tx.customers.add_contact(acme, zoe, role="x" * 101)
    with pytest.raises(Conflict, match=f"customer {zoe.id} is already a contact of {acme.id}"), \
            crm.transaction() as tx:
        tx.customers.add_contact(acme, zoe, role="other")
    assert row_counts(crm) == before


def test_erase_anonymises_everything_the_kernel_holds(crm_factory) -> None:
    erased_by: list[int] = []

    class Keeper:
        @crmkit.hookimpl
        def erase_customer_data(self, tx, customer):
            erased_by.append(customer.id)
            assert customer.email == "jana@example.com"  # plugins run before the kernel

    followup = {"initial": "open", "states": ["open", "closed"], "final": ["closed"],
                "transitions": [{"name": "done", "from": "open", "to": "closed"}]}
    crm = crm_factory(plugins={"keeper": Keeper()}, config={"workflows": {"followup": followup}})
    with crm.transaction(actor="t") as tx:
        jana = tx.customers.create(kind="person", name="Jana Novak", email="jana@example.com",
                                   phone="+371 2000 0000", tags=["vip"],
                                   addresses=[{"country": "LV", "city": "Riga"}],
                                   external_refs={"erp": "J-1"})
        tx.interactions.log(jana, channel="phone", kind="note", summary="Jana Novak called")
        instance = tx.workflows.start("followup", customer=jana,
                                      data={"note": "Jana Novak wants a callback"})
        tx.workflows.fire(instance, "done", data={"by": "Jana Novak"})
        other = tx.customers.create(kind="person", name="Someone Else", email="else@example.com")
    with crm.transaction(actor="dpo") as tx:
        tx.customers.erase(jana.id)
    assert erased_by == [jana.id]
    with crm.transaction(actor="t") as tx:
        stored = tx.customers.get(jana.id)
        assert stored.name == f"erased customer {jana.id}" and stored.status == "archived"
        assert stored.email is None and stored.phone is None and stored.tags == []
        assert stored.addresses == [] and tx.customers.external_refs(stored) == {}
        assert tx.customers.find_by_external_ref("erp", "J-1") is None
        [entry] = tx.interactions.timeline(jana.id)
        assert entry.summary == "(erased)"
        assert tx.customers.get(other.id).email == "else@example.com"
        everything = " ".join(
            [str(i.data) for i in tx.session.scalars(select(WorkflowInstance))]
            + [str(step.data) for step in tx.session.scalars(select(WorkflowStep))]
            + [str(a.changes) for a in tx.session.scalars(select(AuditEntry))]
            + [str(e.payload) for e in tx.session.scalars(select(OutboxEvent))]
        )
    for secret in ("Jana", "jana@example.com", "2000 0000", "Riga", "J-1"):
        assert secret not in everything, secret
    assert "else@example.com" in everything


def test_a_savepoint_undoes_only_its_own_writes_and_events(crm: Crm) -> None:
    with crm.transaction(actor="import") as tx:
        kept = tx.customers.create(kind="person", name="Kept")
        with pytest.raises(ValidationError), tx.savepoint():
            tx.customers.create(kind="person", name="Half written")
            tx.customers.create(kind="person", name="Bad", email="not-an-email")
        with tx.savepoint():
            also = tx.customers.create(kind="person", name="Also kept")
    with crm.transaction() as tx:
        names = [c.name for c in tx.customers.list().items]
        events = list(tx.session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))
    assert names == ["Kept", "Also kept"]
    assert [e.payload["customer_id"] for e in events] == [kept.id, also.id]
