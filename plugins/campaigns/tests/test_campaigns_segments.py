"""Segments: criteria checked, preview count and sample, freezing into a static list."""

import pytest
from crmkit import Conflict, Rejected, ValidationError
from sqlalchemy import func, select

from crmkit_campaigns import segments
from crmkit_campaigns.models import Segment

BUYERS = {"all": [
    {"field": "customer.kind", "op": "eq", "value": "organization"},
    {"field": "customer.countries", "op": "contains", "value": "LV"},
    {"interactions": {"kind": "purchase", "within": "P90D"}, "op": "gte", "value": 1},
    {"interactions": {"kind": "complaint"}, "op": "lte", "value": 1},
]}


def count_segments(crm):
    with crm.transaction() as tx:
        return tx.session.scalar(select(func.count()).select_from(Segment))


def test_unknown_fields_are_refused_and_nothing_is_written(crm):
    with pytest.raises(ValidationError) as info, crm.transaction() as tx:
        segments.add(tx, "typo", {"field": "customer.countyr", "op": "eq", "value": "LV"})
    assert "unknown field 'customer.countyr'" in str(info.value)
    assert count_segments(crm) == 0


def test_names_are_unique_and_required(crm):
    with crm.transaction() as tx:
        segments.add(tx, "all", {"field": "customer.id", "op": "gte", "value": 0})
    with pytest.raises(Conflict), crm.transaction() as tx:
        segments.add(tx, "all", {"field": "customer.id", "op": "gte", "value": 0})
    with pytest.raises(ValidationError, match="name"), crm.transaction() as tx:
        segments.add(tx, " ", {"field": "customer.id", "op": "gte", "value": 0})


def test_preview_counts_and_samples_with_interaction_history(crm, people):
    with crm.transaction() as tx:
        segment = segments.add(tx, "lv-buyers", BUYERS)
    with crm.transaction() as tx:
        data = segments.preview(crm, tx.session, segments.get(tx.session, "lv-buyers"), 5)
    assert data["count"] == 1
    assert [row["id"] for row in data["sample"]] == [people[0].id]
    assert segment.id


def test_freeze_makes_a_static_list(crm, people):
    tagged = {"field": "customer.tags", "op": "contains", "value": "newsletter"}
    with crm.transaction() as tx:
        segment = segments.add(tx, "news", tagged)
        assert segments.freeze(tx, segment) == 3
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Late", tags=["newsletter"])
    with crm.transaction() as tx:
        segment = segments.get(tx.session, "news")
        assert segments.preview(crm, tx.session, segment)["count"] == 3
        with pytest.raises(Rejected, match="already frozen"):
            segments.freeze(tx, segment)
