"""Bad input: every refused record names the field, stays short, and writes nothing.

Each case runs in a transaction that first creates a good customer, so "nothing written"
also proves that the refusal rolled back what came before it. Row counts are read on a
connection of their own, never through the session that failed.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from crmkit import Crm, CrmkitError, ValidationError
from crmkit.db import Base

KERNEL_TABLES = (
    "customer", "customer_tag", "customer_contact", "external_ref", "interaction",
    "audit_entry", "outbox_event",
)
TEN_MB = 10 * 1024 * 1024
HUGE = "x" * TEN_MB
#: An error message is for a human: it names the field and the rule, never echoes the value.
SHORT = 1000


def row_counts(crm: Crm) -> dict[str, int]:
    with crm.engine.connect() as conn:
        return {
            name: conn.execute(
                select(func.count()).select_from(Base.metadata.tables[name])
            ).scalar_one()
            for name in KERNEL_TABLES
        }


@pytest.fixture
def seeded(crm: Crm) -> Crm:
    with crm.transaction() as tx:
        acme = tx.customers.create(kind="organization", name="Acme", tags=["vip"],
                                   external_refs={"sap": "BP-1"})
        tx.interactions.log(acme, channel="phone", kind="note", summary="seed")
    return crm


def refused(crm: Crm, call: Any, error: type[CrmkitError] = ValidationError) -> CrmkitError:
    """Run ``call(tx)`` after a good write in one transaction; it must raise ``error`` and
    leave every kernel table as it was."""
    before = row_counts(crm)
    with pytest.raises(error) as info, crm.transaction(actor="tester") as tx:
        tx.customers.create(kind="person", name="Innocent bystander", tags=["ok"])
        call(tx)
    assert row_counts(crm) == before, "a refused record left rows behind"
    assert len(str(info.value)) < SHORT, str(info.value)[:SHORT]
    return info.value


def paths(exc: CrmkitError) -> list[str]:
    assert isinstance(exc, ValidationError)
    return [issue.path for issue in exc.issues]


# -- customers ------------------------------------------------------------------------------

CUSTOMER_CASES = [
    pytest.param({"email": "not-an-email"}, "email", "'not-an-email' is not a valid email",
                 id="email-no-at"),
    pytest.param({"email": "ann@localhost"}, "email", "is not a valid email", id="email-no-tld"),
    pytest.param({"email": "a b@example.org"}, "email", "is not a valid email",
                 id="email-space"),
    pytest.param({"kind": "robot"}, "kind", "must be one of 'person', 'organization', got "
                 "'robot'", id="kind"),
    pytest.param({"name": 5}, "name", "must be of type string, got int 5", id="name-int"),
    pytest.param({"name": None}, "name", "must be of type string, got NoneType None",
                 id="name-missing"),
    pytest.param({"name": "   "}, "name", "must not be empty", id="name-blank"),
    pytest.param({"tags": "x"}, "tags", "must be of type array, got str 'x'", id="tags-str"),
    pytest.param({"tags": ["ok", 5]}, "tags[1]", "must be of type string", id="tags-item"),
    pytest.param({"tags": ["two words"]}, "tags[0]", "does not match", id="tags-pattern"),
    pytest.param({"tags": ["a", "a"]}, "tags", "must not contain duplicates", id="tags-dupe"),
    pytest.param({"roles": "customer"}, "roles", "must be of type array", id="roles-str"),
    pytest.param({"roles": ["king"]}, "roles[0]", "must be one of", id="roles-enum"),
    pytest.param({"attributes": []}, "attributes", "must be of type object, got list []",
                 id="attributes-list"),
    pytest.param({"attributes": "x"}, "attributes", "must be of type object", id="attributes-str"),
    pytest.param({"attributes": {"shoe_size": 42}}, "attributes", "unknown field 'shoe_size'",
                 id="attributes-unknown"),
    pytest.param({"addresses": "Main St"}, "addresses", "must be of type array",
                 id="addresses-str"),
    pytest.param({"addresses": [{"city": "Berlin"}]}, "addresses[0]",
                 "missing required field 'country'", id="addresses-missing"),
    pytest.param({"addresses": [{"country": "Germany"}]}, "addresses[0].country",
                 "does not match", id="addresses-country"),
    pytest.param({"status": "gone"}, "status", "must be one of", id="status"),
    pytest.param({"phone": "call me"}, "phone", "does not match", id="phone"),
    pytest.param({"owner": 7}, "owner", "must be of type string or null", id="owner"),
]


@pytest.mark.parametrize(("fields", "path", "message"), CUSTOMER_CASES)
def test_bad_customer_is_refused(
    seeded: Crm, fields: dict[str, Any], path: str, message: str
) -> None:
    record = {"kind": "person", "name": "Ann", **fields}
    exc = refused(seeded, lambda tx: tx.customers.create(**record))
    assert path in paths(exc)
    assert f"{path}: " in str(exc) and message in str(exc)


@pytest.mark.parametrize(("fields", "path", "message"), CUSTOMER_CASES)
def test_bad_customer_update_is_refused(
    seeded: Crm, fields: dict[str, Any], path: str, message: str
) -> None:
    with seeded.transaction() as tx:
        customer_id = tx.customers.list().items[0].id
    exc = refused(seeded, lambda tx: tx.customers.update(customer_id, **fields))
    assert path in paths(exc)
    assert f"customer {customer_id}: " in str(exc)


def test_missing_required_fields_in_a_record(crm: Crm) -> None:
    """What importers validate before they call create(**record)."""
    with pytest.raises(ValidationError) as info:
        crm.schemas.check_customer({"email": "ann@example.org"})
    assert str(info.value) == (
        "customer: 2 problems:\n"
        "  - <record>: missing required field 'kind'\n"
        "  - <record>: missing required field 'name'"
    )
    with pytest.raises(ValidationError) as info:
        crm.schemas.check_interaction({"channel": "phone", "summary": "x"})
    assert str(info.value) == "interaction: <record>: missing required field 'kind'"


def test_unknown_field_in_a_record(crm: Crm) -> None:
    with pytest.raises(ValidationError) as info:
        crm.schemas.check_customer({"kind": "person", "name": "Ann", "nmae": "typo"})
    assert str(info.value) == "customer: <record>: unknown field 'nmae'"


@pytest.mark.parametrize("field", ["name", "email", "owner", "phone"])
def test_ten_megabytes_in_a_customer_field(seeded: Crm, field: str) -> None:
    record: dict[str, Any] = {"kind": "person", "name": "Ann", field: HUGE}
    exc = refused(seeded, lambda tx: tx.customers.create(**record))
    assert set(paths(exc)) == {field}  # too long, and for some also the wrong shape
    assert f"{field}: is too long: {TEN_MB:,} characters, at most" in str(exc)
    assert len(repr(exc.issues)) < SHORT  # the issues carry a cut value, not 10 MB


def test_ten_megabytes_in_a_tag_and_an_external_id(seeded: Crm) -> None:
    exc = refused(seeded, lambda tx: tx.customers.create(kind="person", name="Ann",
                                                          tags=[HUGE]))
    assert paths(exc) == ["tags[0]"]
    exc = refused(seeded, lambda tx: tx.customers.create(kind="person", name="Ann",
                                                          external_refs={"sap": HUGE}))
    assert paths(exc) == ["external_id"]
    assert "must be a string of 1 to 200 characters" in str(exc)


def test_bad_external_refs(seeded: Crm) -> None:
    exc = refused(seeded, lambda tx: tx.customers.create(kind="person", name="Ann",
                                                          external_refs=["sap", "1"]))
    assert paths(exc) == ["external_refs"]
    exc = refused(seeded, lambda tx: tx.customers.create(kind="person", name="Ann",
                                                          external_refs={"": "1"}))
    assert paths(exc) == ["system"]


# -- interactions ---------------------------------------------------------------------------

NAIVE = dt.datetime(2026, 1, 1, 12, 0)

INTERACTION_CASES = [
    pytest.param({"channel": "pigeon"}, "channel", "unknown channel 'pigeon'; known: chat, "
                 "email, letter", id="channel-unknown"),
    pytest.param({"channel": "Phone!"}, "channel", "does not match", id="channel-pattern"),
    pytest.param({"channel": 5}, "channel", "must be of type string", id="channel-int"),
    pytest.param({"channel": ["phone"]}, "channel", "must be of type string",
                 id="channel-list"),
    pytest.param({"kind": {"note": 1}}, "kind", "must be of type string", id="kind-dict"),
    pytest.param({"kind": "gossip"}, "kind", "unknown interaction kind 'gossip'; known: "
                 "complaint", id="kind-unknown"),
    pytest.param({"direction": "sideways"}, "direction", "must be one of 'inbound', "
                 "'outbound'", id="direction"),
    pytest.param({"summary": ""}, "summary", "must not be empty", id="summary-empty"),
    pytest.param({"summary": None}, "summary", "must be of type string", id="summary-missing"),
    pytest.param({"summary": ["a"]}, "summary", "must be of type string", id="summary-list"),
    pytest.param({"payload": []}, "payload", "must be of type object", id="payload-list"),
    pytest.param({"amount": 9.99, "currency": "EUR"}, "amount",
                 "must be a Decimal or a string, never a float", id="amount-float"),
    pytest.param({"amount": "abc", "currency": "EUR"}, "amount", "does not match",
                 id="amount-text"),
    pytest.param({"amount": "1.23456", "currency": "EUR"}, "amount", "does not match",
                 id="amount-5-decimals"),
    pytest.param({"amount": Decimal("1e20"), "currency": "EUR"}, "amount", "does not match",
                 id="amount-too-big"),
    pytest.param({"amount": Decimal("NaN"), "currency": "EUR"}, "amount", "does not match",
                 id="amount-nan"),
    pytest.param({"amount": True, "currency": "EUR"}, "amount", "must be of type string",
                 id="amount-bool"),
    pytest.param({"amount": "10"}, "<record>", "'currency' is a dependency of 'amount'",
                 id="amount-without-currency"),
    pytest.param({"amount": "10", "currency": "XYZ"}, "currency",
                 "'XYZ' is not an ISO 4217 currency code", id="currency-unknown"),
    pytest.param({"amount": "10", "currency": "eur"}, "currency", "does not match",
                 id="currency-lowercase"),
    pytest.param({"amount": "10", "currency": "EURO"}, "currency", "does not match",
                 id="currency-long"),
    pytest.param({"occurred_at": NAIVE}, "occurred_at", "has no time zone", id="naive-datetime"),
    pytest.param({"occurred_at": "2026-01-01T12:00:00"}, "occurred_at", "has no time zone",
                 id="naive-string"),
    pytest.param({"occurred_at": "yesterday"}, "occurred_at",
                 "'yesterday' is not an ISO 8601 date-time", id="not-a-date"),
    pytest.param({"occurred_at": 1700000000}, "occurred_at", "must be a date-time, got int",
                 id="epoch-int"),
    pytest.param({"actor": "x" * 201}, "actor", "is too long: 201 characters", id="actor-long"),
]


@pytest.mark.parametrize(("fields", "path", "message"), INTERACTION_CASES)
def test_bad_interaction_is_refused(
    seeded: Crm, fields: dict[str, Any], path: str, message: str
) -> None:
    with seeded.transaction() as tx:
        customer_id = tx.customers.list().items[0].id
    record = {"channel": "phone", "kind": "purchase", "summary": "Order", **fields}
    exc = refused(seeded, lambda tx: tx.interactions.log(customer_id, **record))
    shown = path if path != "<record>" else ""
    assert shown in paths(exc)
    assert f"{path}: " in str(exc) and message in str(exc)


def test_ten_megabytes_in_a_summary(seeded: Crm) -> None:
    with seeded.transaction() as tx:
        customer_id = tx.customers.list().items[0].id
    exc = refused(seeded, lambda tx: tx.interactions.log(customer_id, channel="phone",
                                                         kind="note", summary=HUGE))
    assert paths(exc) == ["summary"]
    assert f"summary: is too long: {TEN_MB:,} characters, at most 10,000 allowed" in str(exc)
    assert len(repr(exc.issues)) < SHORT


def test_ten_megabytes_in_unknown_channel_and_kind(seeded: Crm) -> None:
    with seeded.transaction() as tx:
        customer_id = tx.customers.list().items[0].id
    exc = refused(seeded, lambda tx: tx.interactions.log(customer_id, channel=HUGE,
                                                         kind=HUGE, summary="x"))
    assert paths(exc) == ["channel", "kind"]


def test_bad_actor_for_a_transaction(seeded: Crm) -> None:
    before = row_counts(seeded)
    for actor in ("", "   ", HUGE, 5):
        with pytest.raises(ValidationError) as info, seeded.transaction(actor=actor) as tx:
            tx.customers.create(kind="person", name="Ann")
        assert paths(info.value) == ["actor"]
        assert len(str(info.value)) < SHORT
    assert row_counts(seeded) == before


# -- reading with bad arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "path", "message"),
    [
        (lambda tx, cid: tx.customers.list(name=5), "name", "must be a string, got int"),
        (lambda tx, cid: tx.customers.list(email=["a@b.c"]), "email", "must be a string, got list"),
        (lambda tx, cid: tx.customers.list(tag=1, status=2), "status", "must be a string"),
        (lambda tx, cid: tx.customers.list(after="7"), "after", "must be an integer, got '7'"),
        (lambda tx, cid: tx.customers.list(limit="10"), "limit", "must be between 1 and 1000"),
        (lambda tx, cid: tx.interactions.get("1"), "id", "must be an integer, got '1'"),
        (lambda tx, cid: tx.interactions.timeline(cid, limit=True), "limit", "must be between"),
        (lambda tx, cid: tx.interactions.timeline(cid, before=(NAIVE, 5)), "before",
         "timezone-aware occurred_at"),
        (lambda tx, cid: tx.interactions.timeline(cid, before="2026-01-01"), "before",
         "(occurred_at, id) of the last row"),
        (lambda tx, cid: tx.audit_log.list(limit=0), "limit", "must be between 1 and 1000"),
    ],
)
def test_bad_read_arguments(seeded: Crm, call: Any, path: str, message: str) -> None:
    with seeded.transaction() as tx:
        customer_id = tx.customers.list().items[0].id
        with pytest.raises(ValidationError) as info:
            call(tx, customer_id)
    assert path in paths(info.value)
    assert message in str(info.value)


# -- searching with hostile input --------------------------------------------------------------


@pytest.fixture
def odd_names(crm: Crm) -> Crm:
    with crm.transaction() as tx:
        for name in ("x' OR '1'='1", "100% natural", "under_score", "plain", "back\\slash",
                     "slash/dash", "Robert'); DROP TABLE customer;--"):
            tx.customers.create(kind="organization", name=name, email=None, tags=["t"])
    return crm


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("x' OR '1'='1", ["x' OR '1'='1"]),
        ("' OR '1'='1", ["x' OR '1'='1"]),
        ("'", ["x' OR '1'='1", "Robert'); DROP TABLE customer;--"]),
        ("%", ["100% natural"]),
        ("%%", []),
        ("_", ["under_score"]),
        ("d_r", []),  # "_" is not "any one character" ("under" would match)
        ("\\", ["back\\slash"]),
        ("/", ["slash/dash"]),
        ("/%", []),
        ("DROP TABLE", ["Robert'); DROP TABLE customer;--"]),
        ("*", []),
    ],
)
def test_name_search_is_literal(odd_names: Crm, search: str, expected: list[str]) -> None:
    before = row_counts(odd_names)
    with odd_names.transaction() as tx:
        found = [c.name for c in tx.customers.list(name=search).items]
    assert sorted(found) == sorted(expected)
    assert row_counts(odd_names) == before


def test_other_filters_are_literal(odd_names: Crm) -> None:
    with odd_names.transaction() as tx:
        assert tx.customers.list(email="' OR '1'='1").items == []
        assert tx.customers.list(tag="' OR '1'='1").items == []
        assert tx.customers.list(status="active' OR '1'='1").items == []
        assert tx.customers.find_by_external_ref("sap' OR '1'='1", "x' OR '1'='1") is None
        assert len(tx.customers.list(name=HUGE).items) == 0  # a huge search is just a miss


# -- Unicode ----------------------------------------------------------------------------------

UNICODE_NAMES = [
    "Zoë Ångström-Łukasiewicz",
    "株式会社エクサンプル",
    "Emoji 😀🚀 GmbH",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
    "עברית وعربي",
    "Combining e\u0301 and ZWJ 👩‍👩‍👧",
]


@pytest.mark.parametrize("name", UNICODE_NAMES)
def test_unicode_round_trips(crm_factory, name: str) -> None:
    crm = crm_factory(config={"events": {"dispatch": "worker"}})
    with crm.transaction(actor="Ünïcode 😀") as tx:
        customer = tx.customers.create(kind="organization", name=name,
                                       addresses=[{"city": name[:100], "country": "DE"}])
        tx.interactions.log(customer, channel="chat", kind="feedback", summary=f"{name} ❤️",
                            payload={"text": name})
    with crm.transaction() as tx:
        stored = tx.customers.get(customer.id)
        assert stored.name == name
        assert stored.addresses == [{"city": name[:100], "country": "DE"}]
        [interaction] = tx.interactions.timeline(stored)
        assert interaction.summary == f"{name} ❤️"
        assert interaction.payload == {"text": name}
        assert interaction.actor == "Ünïcode 😀"
        # A substring that starts with a four-byte character finds it.
        needle = name[-4:]
        assert [c.id for c in tx.customers.list(name=needle).items] == [customer.id]
        entries = tx.audit_log.list(entity="customer", entity_id=customer.id)
        assert entries[0].changes["after"]["name"] == name
        assert entries[0].actor == "Ünïcode 😀"
