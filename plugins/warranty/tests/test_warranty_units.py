"""Products and registered units: terms, purchases on the timeline, transfers, bad input."""

import datetime as dt

import pytest
from crmkit.errors import Conflict, NotFound, ValidationError
from sqlalchemy import func, select
from warranty_helpers import days_ago, register

from crmkit_warranty import catalog, units
from crmkit_warranty.models import WarrantyOwnership, WarrantyProduct, WarrantyUnit
from crmkit_warranty.terms import add_business_days, add_months, entitlement


def count(crm, model):
    with crm.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_months_and_business_days():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2026, 11, 15), 24) == dt.date(2028, 11, 15)
    friday = dt.datetime(2026, 11, 27, 15, 0, tzinfo=dt.UTC)
    assert add_business_days(friday, 2) == dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
    assert add_business_days(friday, 2, {dt.date(2026, 11, 30)}) == \
        dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC)
    end, extended_end = dt.date(2026, 1, 1), dt.date(2026, 6, 30)
    assert entitlement(dt.date(2026, 1, 1), end, extended_end) == "in_warranty"
    assert entitlement(dt.date(2026, 3, 1), end, extended_end) == "extended"
    assert entitlement(dt.date(2026, 7, 1), end, extended_end) == "expired"
    assert entitlement(dt.date(2026, 3, 1), end, None) == "expired"
    assert entitlement(dt.date(2026, 3, 1), None, None) == "unknown"


def test_registering_derives_the_warranty_and_logs_the_purchase(crm, catalogue):
    ann = catalogue[0]
    with crm.transaction() as tx:
        unit = register(tx, ann, "SN-1", age=40, extended=True)
        purchase = tx.interactions.get(unit.purchase_interaction_id)
        assert purchase.kind == "purchase" and purchase.customer_id == ann
        assert "SN-1" in purchase.summary
    assert unit.warranty_start == days_ago(40)
    assert unit.warranty_end == add_months(days_ago(40), 24)
    assert unit.extended_end == add_months(unit.warranty_end, 12)


def test_a_linked_purchase_is_not_logged_twice(crm, catalogue):
    ann = catalogue[0]
    with crm.transaction() as tx:
        order = tx.interactions.log(ann, channel="web", kind="purchase", summary="Order 1",
                                    amount="499.00", currency="EUR")
        unit = units.register_unit(tx, sku="WM-100", serial="SN-2", customer_id=ann,
                                   purchase_date=days_ago(1), purchase_interaction_id=order.id)
        assert unit.purchase_interaction_id == order.id
        assert len(tx.interactions.timeline(ann, kinds=["purchase"])) == 1


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"serial": "SN-1"}, Conflict, "serial 'SN-1' of product 'WM-100' is already registered"),
    ({"purchase_date": dt.date.today() + dt.timedelta(days=1)}, ValidationError,
     "purchase_date: is in the future"),
    ({"sku": "NOPE"}, NotFound, "no product with SKU 'NOPE'"),
    ({"customer_id": 999999}, NotFound, "no customer with id 999999"),
    ({"sku": "DW-200", "extended": True}, ValidationError, "offers no extended warranty"),
    ({"purchase_date": "2026-13-01"}, ValidationError, "must be a date"),
])
def test_bad_units_are_refused_and_nothing_changes(crm, catalogue, change, error, message):
    with crm.transaction() as tx:
        register(tx, catalogue[0], "SN-1")
    before = (count(crm, WarrantyUnit), count(crm, WarrantyOwnership))
    args = {"sku": "WM-100", "serial": "SN-NEW", "customer_id": catalogue[0],
            "purchase_date": days_ago(3), **change}
    with pytest.raises(error, match=message), crm.transaction() as tx:
        units.register_unit(tx, **args)
    assert (count(crm, WarrantyUnit), count(crm, WarrantyOwnership)) == before
    with crm.transaction() as tx:
        assert len(tx.interactions.timeline(catalogue[0], kinds=["purchase"])) == 1


def test_the_same_serial_may_exist_on_two_products(crm, catalogue):
    with crm.transaction() as tx:
        register(tx, catalogue[0], "SN-1")
        register(tx, catalogue[0], "SN-1", sku="DW-200")
    assert count(crm, WarrantyUnit) == 2


def test_transfer_keeps_the_ownership_history(crm, catalogue, crmkit_recorder):
    ann, bob, _ = catalogue
    with crm.transaction() as tx:
        register(tx, ann, "SN-1", age=100)
    with crm.transaction() as tx:
        unit = units.transfer_unit(tx, units.get_unit(tx.session, "WM-100", "SN-1"), bob,
                                   days_ago(5))
        data = units.unit_dict(tx.session, unit, history=True)
    assert data["customer_id"] == bob
    assert data["owners"] == [
        {"customer_id": ann, "since": days_ago(100).isoformat(), "until": days_ago(5).isoformat()},
        {"customer_id": bob, "since": days_ago(5).isoformat(), "until": None},
    ]
    assert crmkit_recorder.event("warranty.unit_transferred").payload["from_customer_id"] == ann
    with pytest.raises(ValidationError, match="already owns"), crm.transaction() as tx:
        units.transfer_unit(tx, units.get_unit(tx.session, "WM-100", "SN-1"), bob)


def test_product_import_is_all_or_nothing_and_idempotent(crm):
    good = [("f:line 2", {"sku": "A-1", "name": "A", "product_line": "x",
                          "warranty_months": "24", "extended_months": ""}),
            ("f:line 3", {"sku": "B-1", "name": "B", "product_line": "x",
                          "warranty_months": "12", "extended_months": "12"})]
    bad = [*good, ("f:line 4", {"sku": "C-1", "name": "", "product_line": "x",
                                "warranty_months": "soon"}),
           ("f:line 5", {"sku": "A-1", "name": "A", "product_line": "x",
                         "warranty_months": "24"})]
    with pytest.raises(ValidationError) as info, crm.transaction() as tx:
        catalog.import_products(tx, bad)
    text = str(info.value)
    assert "f:line 4: missing required field 'name'" in text and "f:line 4: warranty_months" in text
    assert "f:line 5: sku: duplicate of f:line 2" in text
    assert count(crm, WarrantyProduct) == 0
    with crm.transaction() as tx:
        assert catalog.import_products(tx, good) == {"created": 2, "updated": 0,
                                                     "unchanged": 0}
    with crm.transaction() as tx:
        assert catalog.import_products(tx, good) == {"created": 0, "updated": 0,
                                                     "unchanged": 2}


def test_unit_import_is_all_or_nothing_and_idempotent(crm, catalogue):
    ann, bob, _ = catalogue
    rows = [("u:line 2", {"sku": "WM-100", "serial": "S1", "customer_id": str(ann),
                          "purchase_date": days_ago(3).isoformat(), "batch": "B1"}),
            ("u:line 3", {"sku": "WM-100", "serial": "S2", "customer_id": str(bob),
                          "purchase_date": days_ago(3).isoformat(), "batch": "B1",
                          "extended": "yes"})]
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    bad = [*rows, ("u:line 4", {"sku": "WM-100", "serial": "S3", "customer_id": str(ann),
                                "purchase_date": future}),
           ("u:line 5", {"sku": "WM-100", "serial": "S1", "customer_id": str(ann),
                         "purchase_date": days_ago(3).isoformat()})]
    with pytest.raises(ValidationError) as info, crm.transaction() as tx:
        units.import_units(tx, bad)
    assert "u:line 4: purchase_date: is in the future" in str(info.value)
    assert "u:line 5: serial: duplicate of u:line 2" in str(info.value)
    assert count(crm, WarrantyUnit) == 0
    with crm.transaction() as tx:
        assert units.import_units(tx, rows) == {"created": 2, "unchanged": 0}
    with crm.transaction() as tx:
        assert units.import_units(tx, rows) == {"created": 0, "unchanged": 2}
        assert units.get_unit(tx.session, "WM-100", "S2").extended is True
