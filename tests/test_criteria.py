"""The criteria language: validation, and SQL and Python always agreeing (Hypothesis)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crmkit import Crm, ValidationError
from crmkit.criteria import (
    MAX_DEPTH,
    MAX_NODES,
    CustomerRecord,
    FieldRegistry,
    kernel_fields,
    parse_duration,
)
from crmkit.db import utcnow
from crmkit.models import Customer, CustomerTag, Interaction

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
CUSTOM_FIELDS = {
    "tier": {"enum": ["gold", "silver", "bronze"]},
    "score": {"type": "number"},
    "seats": {"type": "integer"},
    "active": {"type": "boolean"},
}


def registry() -> FieldRegistry:
    reg = FieldRegistry(kernel_fields())
    reg.add_custom_fields(CUSTOM_FIELDS)
    return reg


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "path", "needle"),
    [
        ({"field": "customer.nmae", "op": "eq", "value": "x"}, "criteria.field",
         "unknown field 'customer.nmae'"),
        ({"field": "customer.name", "op": "lt", "value": "x"}, "criteria.op",
         "'lt' does not apply to customer.name (string)"),
        ({"field": "customer.created_at", "op": "gt", "value": "yesterday"}, "criteria.value",
         "ISO 8601"),
        ({"field": "customer.created_at", "op": "within", "value": "90 days"},
         "criteria.value", "duration"),
        ({"field": "attributes.seats", "op": "eq", "value": "3"}, "criteria.value",
         "needs a integer"),
        ({"field": "customer.kind", "op": "in", "value": []}, "criteria.value", "non-empty"),
        ({"field": "customer.kind", "op": "eq"}, "criteria.value", "needs a value"),
        ({"field": "customer.kind", "op": "eq", "value": ["a"]}, "criteria.value",
         "not a list"),
        ({"field": "customer.kind", "op": "regex", "value": "a"}, "criteria", ""),
        ({"all": []}, "criteria", ""),
        ({"field": "customer.kind; DROP TABLE customer", "op": "eq", "value": "a"}, "criteria",
         ""),
        ({"interactions": {"kind": "purchase"}, "op": "gte", "value": -1}, "criteria", ""),
        ("not an object", "criteria", ""),
    ],
)
def test_invalid_criteria_are_refused_with_their_path(document: Any, path: str,
                                                      needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        registry().compile(document)
    assert any(issue.path.startswith(path) and needle in issue.message
               for issue in info.value.issues), info.value.issues


def test_depth_and_size_limits() -> None:
    leaf = {"field": "customer.kind", "op": "eq", "value": "person"}
    deep: dict[str, Any] = leaf
    for _ in range(MAX_DEPTH + 2):
        deep = {"not": deep}
    with pytest.raises(ValidationError, match="nested deeper than"):
        registry().compile(deep)
    wide = {"any": [{"all": [leaf] * 100} for _ in range(MAX_NODES // 100 + 1)]}
    with pytest.raises(ValidationError, match=f"more than {MAX_NODES} conditions"):
        registry().compile(wide)


def test_durations() -> None:
    assert parse_duration("P90D") == dt.timedelta(days=90)
    assert parse_duration("P2W") == dt.timedelta(weeks=2)
    assert parse_duration("PT48H") == dt.timedelta(hours=48)
    assert parse_duration("P1DT12H") == dt.timedelta(days=1, hours=12)
    with pytest.raises(ValueError):
        parse_duration("P1M")  # months have no fixed length


# -- a worked example on every backend ----------------------------------------------------


def test_segment_example(crm_factory: Any) -> None:
    crm: Crm = crm_factory(config={"customer_fields": CUSTOM_FIELDS})
    reg = registry()
    now = utcnow()
    with crm.transaction() as tx:
        riga = tx.customers.create(kind="organization", name="Riga Foods",
                                   addresses=[{"country": "LV"}])
        vilnius = tx.customers.create(kind="organization", name="Vilnius Tools",
                                      addresses=[{"country": "LT"}])
        tallinn = tx.customers.create(kind="organization", name="Tallinn Wood",
                                      addresses=[{"country": "EE"}])
        for customer, purchases, complaints in ((riga, 1, 0), (vilnius, 2, 2), (tallinn, 1, 0)):
            for n in range(purchases):
                tx.interactions.log(customer, channel="web", kind="purchase", summary="order",
                                    occurred_at=now - dt.timedelta(days=10 + n))
            for n in range(complaints):
                tx.interactions.log(customer, channel="phone", kind="complaint", summary="c",
                                    occurred_at=now - dt.timedelta(days=5 + n))
    # "organizations in LV or LT that bought in the last 90 days and complained at most once"
    segment = reg.compile({"all": [
        {"field": "customer.kind", "op": "eq", "value": "organization"},
        {"any": [{"field": "customer.countries", "op": "contains", "value": "LV"},
                 {"field": "customer.countries", "op": "contains", "value": "LT"}]},
        {"interactions": {"kind": "purchase", "within": "P90D"}, "op": "gte", "value": 1},
        {"interactions": {"kind": "complaint"}, "op": "lte", "value": 1},
    ]})
    with crm.transaction() as tx:
        ids = set(tx.session.scalars(select(Customer.id).where(segment.to_sql(now))))
        assert ids == {riga.id}
        for customer in (riga, vilnius, tallinn):
            record = CustomerRecord.of(tx.customers.get(customer.id),
                                       tx.interactions.timeline(customer.id, limit=1000))
            assert segment.evaluate(record, now) is (customer.id in ids)


# -- the property: SQL and Python agree ---------------------------------------------------

TEXT = st.text(alphabet="aAbÄ%_ ' x", min_size=1, max_size=4).map(str.strip).filter(bool)
TAGS = st.sampled_from(["vip", "VIP", "retail", "a%b", "a_b"])
COUNTRIES = st.sampled_from(["LV", "LT", "EE", "DE"])
TIMES = st.integers(min_value=-400, max_value=30).map(lambda d: NOW + dt.timedelta(days=d,
                                                                                   hours=d % 7))


@st.composite
def customers(draw: st.DrawFn) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if draw(st.booleans()):
        attributes["tier"] = draw(st.sampled_from(["gold", "silver", "bronze"]))
    if draw(st.booleans()):
        attributes["score"] = draw(st.sampled_from([0, 1.5, -2, 10, 2.25]))
    if draw(st.booleans()):
        attributes["seats"] = draw(st.integers(min_value=-3, max_value=5))
    if draw(st.booleans()):
        attributes["active"] = draw(st.booleans())
    return {
        "kind": draw(st.sampled_from(["person", "organization"])),
        "name": draw(TEXT),
        "status": draw(st.sampled_from(["prospect", "active", "inactive"])),
        "email": draw(st.none() | st.sampled_from(["a@x.example", "b@x.example"])),
        "owner": draw(st.none() | TEXT),
        "roles": draw(st.lists(st.sampled_from(["customer", "partner", "prospect"]),
                               unique=True, max_size=2)),
        "tags": draw(st.lists(TAGS, unique=True, max_size=3)),
        "addresses": [{"country": c} for c in draw(st.lists(COUNTRIES, unique=True,
                                                            max_size=2))],
        "attributes": attributes,
        "created_at": draw(TIMES),
        "interactions": draw(st.lists(st.tuples(
            st.sampled_from(["purchase", "complaint", "note"]),
            st.sampled_from(["web", "phone"]),
            st.sampled_from(["inbound", "outbound"]),
            TIMES,
        ), max_size=5)),
    }


def leaf_conditions() -> st.SearchStrategy[dict[str, Any]]:
    def compare(field: str, ops: list[str], values: st.SearchStrategy[Any]
                ) -> st.SearchStrategy[dict[str, Any]]:
        return st.builds(lambda op, v: {"field": field, "op": op, "value": v},
                         st.sampled_from(ops), values)

    durations = st.sampled_from(["P1D", "P30D", "P2W", "PT48H", "P365D"])
    instants = TIMES.map(lambda t: t.isoformat())
    return st.one_of(
        compare("customer.kind", ["eq", "ne"], st.sampled_from(["person", "organization"])),
        compare("customer.name", ["eq", "ne", "contains"], TEXT),
        compare("customer.owner", ["eq", "ne", "contains"], TEXT),
        st.builds(lambda vs: {"field": "customer.status", "op": "in", "value": vs},
                  st.lists(st.sampled_from(["prospect", "active", "x"]), min_size=1)),
        compare("customer.email", ["exists"], st.booleans()),
        compare("customer.owner", ["exists"], st.booleans()),
        compare("customer.tags", ["contains"], TAGS),
        compare("customer.tags", ["exists"], st.booleans()),
        compare("customer.roles", ["contains"], st.sampled_from(["customer", "partner", "x"])),
        compare("customer.roles", ["exists"], st.booleans()),
        compare("customer.countries", ["contains"], COUNTRIES),
        compare("customer.created_at", ["within", "older_than"], durations),
        compare("customer.created_at", ["lt", "lte", "gt", "gte"], instants),
        compare("attributes.tier", ["eq", "ne", "contains"],
                st.sampled_from(["gold", "silver", "old"])),
        compare("attributes.tier", ["exists"], st.booleans()),
        compare("attributes.score", ["eq", "ne", "lt", "lte", "gt", "gte"],
                st.sampled_from([0, 1.5, -2, 2.25, 3])),
        compare("attributes.seats", ["eq", "ne", "lt", "gte"], st.integers(-3, 5)),
        st.builds(lambda vs: {"field": "attributes.seats", "op": "in", "value": vs},
                  st.lists(st.integers(-3, 5), min_size=1, max_size=3)),
        compare("attributes.active", ["eq", "ne"], st.booleans()),
        st.builds(
            lambda spec, op, v: {"interactions": spec, "op": op, "value": v},
            st.fixed_dictionaries({}, optional={
                "kind": st.sampled_from(["purchase", "complaint"]) | st.lists(
                    st.sampled_from(["purchase", "note"]), min_size=1, unique=True),
                "channel": st.sampled_from(["web", "phone"]),
                "direction": st.sampled_from(["inbound", "outbound"]),
                "within": durations,
            }),
            st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
            st.integers(0, 3),
        ),
    )


CRITERIA = st.recursive(
    leaf_conditions(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(children, min_size=1, max_size=3).map(lambda c: {"any": c}),
        children.map(lambda c: {"not": c}),
    ),
    max_leaves=6,
)


@settings(max_examples=int(os.environ.get("CRMKIT_CRITERIA_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.lists(customers(), min_size=1, max_size=6),
       documents=st.lists(CRITERIA, min_size=1, max_size=5))
def test_sql_and_python_agree(crm_factory: Any, data: list[dict[str, Any]],
                              documents: list[dict[str, Any]]) -> None:
    crm = _shared_crm(crm_factory)
    reg = registry()
    session = crm.session()
    try:
        with session.begin():
            records = []
            for row in data:
                customer = Customer(
                    kind=row["kind"], name=row["name"], status=row["status"],
                    email=row["email"], owner=row["owner"], roles=row["roles"],
                    addresses=row["addresses"], attributes=row["attributes"],
                    created_at=row["created_at"], updated_at=row["created_at"],
                    tag_rows=[CustomerTag(tag=t) for t in row["tags"]],
                )
                session.add(customer)
                session.flush()
                interactions = [
                    Interaction(customer_id=customer.id, kind=k, channel=c, direction=d,
                                occurred_at=t, summary="s", payload={})
                    for k, c, d, t in row["interactions"]
                ]
                session.add_all(interactions)
                session.flush()
                records.append((customer.id, CustomerRecord.of(customer, interactions)))
            for document in documents:
                criteria = reg.compile(document)
                in_sql = set(session.scalars(
                    select(Customer.id).where(criteria.to_sql(NOW))
                    .where(Customer.id.in_([cid for cid, _ in records]))
                ))
                in_python = {cid for cid, record in records if criteria.evaluate(record, NOW)}
                assert in_sql == in_python, document
            session.rollback()
    finally:
        session.close()


_CRMS: dict[int, Crm] = {}


def _shared_crm(factory: Any) -> Crm:
    # One deployment per test instance: Hypothesis calls the body many times with the same
    # function-scoped fixture, and every example rolls back what it wrote.
    key = id(factory)
    if key not in _CRMS:
        _CRMS.clear()
        _CRMS[key] = factory(config={"customer_fields": CUSTOM_FIELDS})
    return _CRMS[key]


def test_text_contains_is_case_sensitive_everywhere(crm: Crm) -> None:
    with crm.transaction() as tx:
        tx.customers.create(kind="organization", name="Acme 100%")
    reg = registry()
    with crm.transaction() as tx:
        for value, expected in (("acme", 0), ("Acme", 1), ("100%", 1), ("0%", 1), ("%", 1),
                                ("_", 0), ("A_me", 0)):
            criteria = reg.compile({"field": "customer.name", "op": "contains", "value": value})
            found = list(tx.session.scalars(select(Customer.id).where(criteria.to_sql())))
            assert len(found) == expected, value
