"""Defect analytics computed in SQL, checked against hand-worked numbers; threshold alerts
raised in the transaction of the claim that crosses them."""

import pytest
from sqlalchemy import func, select, update
from warranty_helpers import register

from crmkit_warranty import analytics, catalog, claims
from crmkit_warranty.models import WarrantyAlert, WarrantyClaim, WarrantyProduct, WarrantyUnit


def claim(tx, serial, code, sku="WM-100", **kwargs):
    return claims.open_claim(tx, sku=sku, serial=serial, defect_code=code,
                             description="broken", channel="email", **kwargs)


@pytest.fixture
def fleet(crm, catalogue):
    """19 units, 6 claims (one rejected): the numbers in the comments are worked by hand."""
    ann, bob, _ = catalogue
    with crm.transaction() as tx:
        catalog.add_product(tx, sku="WM-300", name="Washer 300", product_line="laundry",
                            warranty_months=24)
        for i in range(10):
            register(tx, ann, f"B1-{i}", batch="B1")
        for i in range(5):
            register(tx, ann, f"B2-{i}", batch="B2")
        for i in range(4):
            register(tx, bob, f"K1-{i}", sku="DW-200", batch="K1")
        claim(tx, "B1-0", "no_power")
        claim(tx, "B1-1", "no_power")
        claim(tx, "B2-0", "display")
        claim(tx, None, "no_power", customer_id=bob)
        claim(tx, "K1-0", "leak", sku="DW-200")
        rejected = claim(tx, "K1-1", "leak", sku="DW-200")
        claims.move_claim(tx, rejected.id, "reject", reason="misuse")
    return catalogue


def report(crm, by):
    with crm.transaction(readonly=True) as tx:
        return analytics.defect_report(tx.session, by, {"no_power": "No power"})


def test_defect_rate_per_product(crm, fleet):
    rows = report(crm, "product")
    assert [(r["sku"], r["units"], r["claims"], r["rate_percent"]) for r in rows] == [
        ("WM-100", 15, 4, 26.67),   # 4 / 15 (3 on units + 1 without serial)
        ("DW-200", 4, 1, 25.0),     # 1 / 4 (the rejected claim does not count)
        ("WM-300", 0, 0, None),     # no units in service: no rate
    ]


def test_defect_rate_per_product_line(crm, fleet):
    rows = report(crm, "product_line")
    assert [(r["product_line"], r["products"], r["units"], r["claims"], r["rate_percent"])
            for r in rows] == [("laundry", 2, 15, 4, 26.67), ("kitchen", 1, 4, 1, 25.0)]


def test_defect_rate_per_batch(crm, fleet):
    rows = report(crm, "batch")
    assert [(r["sku"], r["batch"], r["units"], r["claims"], r["rate_percent"])
            for r in rows] == [("DW-200", "K1", 4, 1, 25.0),   # 1 / 4
                               ("WM-100", "B1", 10, 2, 20.0),  # 2 / 10
                               ("WM-100", "B2", 5, 1, 20.0)]   # 1 / 5


def test_defect_rate_per_month_counts_units_in_service(crm, fleet):
    with crm.transaction() as tx:
        dw = catalog.get_product(tx.session, "DW-200")
        tx.session.execute(update(WarrantyUnit).where(WarrantyUnit.product_id == dw.id)
                           .values(purchase_month="2020-01"))
        tx.session.execute(update(WarrantyClaim).where(WarrantyClaim.product_id == dw.id)
                           .values(opened_month="2020-01"))
        month = tx.session.scalar(select(func.max(WarrantyClaim.opened_month)))
    rows = report(crm, "month")
    assert [(r["month"], r["claims"], r["units_in_service"], r["rate_percent"])
            for r in rows] == [("2020-01", 1, 4, 25.0),   # only DW-200 in service: 1 / 4
                               (month, 4, 19, 21.05)]     # 4 / 19 = 21.0526...


def test_top_defect_codes(crm, fleet):
    rows = report(crm, "code")
    assert [(r["defect_code"], r["claims"], r["share_percent"]) for r in rows] == [
        ("no_power", 3, 60.0), ("display", 1, 20.0), ("leak", 1, 20.0)]  # of 5 counted
    assert rows[0]["description"] == "No power"


def test_mean_time_to_resolution(crm, fleet):
    with crm.transaction() as tx:
        ids = [c.id for c in claims.list_claims(tx.session, sku="WM-100")][:3]
        for claim_id, remedy in zip(ids, ("repair", "replace", "repair"), strict=True):
            for step in ("triage", remedy, "resolve"):
                claims.move_claim(tx, claim_id, step)
        for claim_id, days in zip(ids, (1, 3, 2), strict=True):
            tx.session.execute(update(WarrantyClaim).where(WarrantyClaim.id == claim_id)
                               .values(resolution_seconds=days * 86400))
    with crm.transaction(readonly=True) as tx:
        by_product = analytics.resolution_report(tx.session, "product")
        by_remedy = analytics.resolution_report(tx.session, "remedy")
    assert by_product == [{"sku": "WM-100", "resolved": 3, "mean_days": 2.0, "max_days": 3.0}]
    assert by_remedy == [{"remedy": "repair", "resolved": 2, "mean_days": 1.5, "max_days": 2.0},
                         {"remedy": "replace", "resolved": 1, "mean_days": 3.0,
                          "max_days": 3.0}]


def test_sla_report(crm, fleet):
    import datetime as dt

    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with crm.transaction() as tx:
        first, second = [c.id for c in claims.list_claims(tx.session, sku="WM-100")][:2]
        tx.session.execute(update(WarrantyClaim).where(WarrantyClaim.id == first)
                           .values(triage_due_at=past))
        tx.session.execute(update(WarrantyClaim).where(WarrantyClaim.id == second)
                           .values(resolution_due_at=past, resolution_breached=True))
    with crm.transaction(readonly=True) as tx:
        rows = analytics.sla_report(tx.session)
    assert rows == [
        {"sla": "triage", "claims": 5, "breached": 1, "open_overdue": 1,
         "breach_rate_percent": 20.0},
        {"sla": "resolution", "claims": 5, "breached": 1, "open_overdue": 1,
         "breach_rate_percent": 20.0},
    ]


ALERT = {"plugin": {"warranty": {"alerts": [
    {"name": "early-batch", "scope": "batch", "rate_percent": 10, "within_days": 30,
     "min_units": 10}]}}}


def alerts(crm):
    with crm.session() as session:
        return session.scalars(select(WarrantyAlert).order_by(WarrantyAlert.id)).all()


def test_the_claim_that_crosses_a_threshold_raises_the_alert_in_its_transaction(
        crm_factory, catalogue, crmkit_recorder):
    crm = crm_factory(config=ALERT)
    with crm.transaction() as tx:
        for i in range(10):
            register(tx, catalogue[0], f"B1-{i}", batch="B1")
        for i in range(10):
            register(tx, catalogue[0], f"OLD-{i}", batch="OLD", age=60)
    with crm.transaction() as tx:
        claim(tx, "B1-0", "no_power")            # 1 / 10 = 10%: not more than 10%
        claim(tx, "OLD-0", "no_power")           # 60 days after purchase: outside the window
        claim(tx, "OLD-1", "no_power")
    assert alerts(crm) == [] and crmkit_recorder.events("warranty.defect_threshold_crossed") == []
    # A claim that would cross, rolled back: no alert row, no event.
    with pytest.raises(RuntimeError), crm.transaction() as tx:
        claim(tx, "B1-1", "no_power")
        raise RuntimeError("support hung up")
    assert alerts(crm) == [] and crmkit_recorder.events("warranty.defect_threshold_crossed") == []
    with crm.transaction() as tx:
        crossing = claim(tx, "B1-1", "no_power")  # 2 / 10 = 20% > 10%: crosses
        ids = tx
    event = crmkit_recorder.event("warranty.defect_threshold_crossed")
    opened = crmkit_recorder.events("warranty.claim_opened")[-1]
    assert event.id in ids.event_ids and opened.id in ids.event_ids  # one transaction
    assert event.payload == {
        "alert_id": alerts(crm)[0].id, "rule": "early-batch", "scope": "batch",
        "key": "WM-100/B1", "claims": 2, "units": 10, "rate_percent": 20.0,
        "threshold_percent": 10, "within_days": 30, "claim_id": crossing.id,
        "customer_id": catalogue[0]}
    with crm.transaction() as tx:
        claim(tx, "B1-2", "no_power")            # already above: no second alert
    assert len(alerts(crm)) == 1


def test_product_scope_and_min_units(crm_factory, catalogue, crmkit_recorder):
    crm = crm_factory(config={"plugin": {"warranty": {"alerts": [
        {"name": "product", "scope": "product", "rate_percent": 30, "min_units": 3}]}}})
    with crm.transaction() as tx:
        register(tx, catalogue[0], "A", sku="DW-200")
        register(tx, catalogue[0], "B", sku="DW-200")
        claim(tx, "A", "leak", sku="DW-200")     # 2 units < min_units 3: no alert
        register(tx, catalogue[0], "C", sku="DW-200")
        claim(tx, "B", "leak", sku="DW-200")     # 2 / 3 = 66.7% but 1/3 = 33.3% already above
    assert crmkit_recorder.events("warranty.defect_threshold_crossed") == []
    with crm.transaction() as tx:
        for serial in "DEFG":
            register(tx, catalogue[0], serial, sku="DW-200")
        claim(tx, "C", "leak", sku="DW-200")     # 3 / 7 = 42.9%, 2 / 7 = 28.6%: crosses 30
    event = crmkit_recorder.event("warranty.defect_threshold_crossed")
    assert (event.payload["key"], event.payload["rate_percent"]) == ("DW-200", 42.86)


def test_report_tables_exist_only_with_the_plugin_prefix():
    assert all(t.startswith("warranty_") for t in (
        WarrantyProduct.__tablename__, WarrantyUnit.__tablename__,
        WarrantyClaim.__tablename__, WarrantyAlert.__tablename__))


def test_units_without_a_batch_form_their_own_group(crm, catalogue):
    with crm.transaction() as tx:
        register(tx, catalogue[0], "N1", batch=None)
        register(tx, catalogue[0], "N2", batch=None)
        register(tx, catalogue[0], "L1", batch="L")
        claim(tx, "N1", "noise")
    assert [(r["batch"], r["units"], r["claims"], r["rate_percent"])
            for r in report(crm, "batch")] == [(None, 2, 1, 50.0), ("L", 1, 0, 0.0)]
