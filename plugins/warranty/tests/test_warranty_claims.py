"""Claims: entitlement at opening, the lifecycle workflow, SLA timers, the timeline, bad input."""

import datetime as dt

import pytest
from crmkit.errors import NotFound, Rejected, ValidationError
from crmkit.workflow import fire_due_timers
from sqlalchemy import func, select
from warranty_helpers import register

from crmkit_warranty import claims
from crmkit_warranty.models import WarrantyClaim


def open_claim(tx, **kwargs):
    args = {"sku": "WM-100", "serial": "SN-1", "defect_code": "no_power",
            "description": "Dead on arrival", "channel": "phone", **kwargs}
    return claims.open_claim(tx, **args)


def claim_count(crm):
    with crm.session() as session:
        return session.scalar(select(func.count()).select_from(WarrantyClaim))


def timeline(crm, customer_id):
    with crm.transaction() as tx:
        return [i.summary for i in reversed(
            tx.interactions.timeline(customer_id, kinds=["warranty_claim"]))]


@pytest.mark.parametrize(("age", "extended", "expected"), [
    (10, False, "in_warranty"), (800, True, "extended"), (800, False, "expired"),
])
def test_entitlement_is_checked_and_shown_never_decided(crm, catalogue, age, extended,
                                                        expected, crmkit_recorder):
    with crm.transaction() as tx:
        register(tx, catalogue[0], "SN-1", age=age, extended=extended)
    with crm.transaction() as tx:
        claim = open_claim(tx)
    assert claim.entitlement == expected and claim.state == "reported"
    assert crmkit_recorder.event("warranty.claim_opened").payload["entitlement"] == expected
    assert f"entitlement: {expected}" in timeline(crm, catalogue[0])[0]


def test_a_claim_without_serial_names_product_and_customer(crm, catalogue):
    with crm.transaction() as tx:
        claim = open_claim(tx, serial=None, customer_id=catalogue[1])
    assert (claim.unit_id, claim.entitlement, claim.customer_id) == (None, "unknown",
                                                                      catalogue[1])


def test_a_claim_from_report_to_close_is_on_the_timeline(crm, catalogue, crmkit_recorder):
    ann = catalogue[0]
    with crm.transaction() as tx:
        register(tx, ann, "SN-1")
    with crm.transaction(actor="support") as tx:
        claim_id = open_claim(tx).id
    for transition in ("triage", "order_parts", "repair"):
        with crm.transaction(actor="support") as tx:
            claims.move_claim(tx, claim_id, transition, note=f"{transition} done")
    with crm.transaction(actor="support") as tx:
        claims.move_claim(tx, claim_id, "resolve", note="new pump fitted")
        claims.move_claim(tx, claim_id, "close")
    with crm.transaction() as tx:
        claim = claims.get_claim(tx.session, claim_id)
        steps = [(s.transition, s.to_state) for s in tx.workflows.history(
            claim.workflow_instance_id)]
    assert steps == [("start", "reported"), ("triage", "triaged"),
                     ("order_parts", "awaiting_parts"), ("repair", "repair"),
                     ("resolve", "resolved"), ("close", "closed")]
    assert (claim.state, claim.remedy) == ("closed", "repair")
    assert claim.triaged_at and claim.resolved_at and claim.closed_at
    assert claim.resolution_seconds is not None and claim.resolution_seconds >= 0
    lines = timeline(crm, ann)
    assert len(lines) == 6 and lines[0].startswith(f"Warranty claim #{claim_id} opened")
    assert lines[4] == (f"Warranty claim #{claim_id}: resolve (repair → resolved): "
                        "new pump fitted")
    moved = [e.payload["transition"] for e in crmkit_recorder.events("warranty.claim_moved")]
    assert moved == ["triage", "order_parts", "repair", "resolve", "close"]


def test_rejecting_needs_a_reason(crm, catalogue):
    with crm.transaction() as tx:
        register(tx, catalogue[0], "SN-1")
        claim_id = open_claim(tx).id
    with pytest.raises(Rejected, match="needs a reason"), crm.transaction() as tx:
        claims.move_claim(tx, claim_id, "reject", reason="  ")
    with crm.transaction() as tx:
        claims.move_claim(tx, claim_id, "reject", reason="Water damage, not covered")
    with crm.transaction() as tx:
        claim = claims.get_claim(tx.session, claim_id)
        assert (claim.state, claim.reject_reason) == ("rejected", "Water damage, not covered")
    assert timeline(crm, catalogue[0])[-1].endswith("Water damage, not covered")


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"serial": "NOPE"}, NotFound, "no registered unit with serial 'NOPE' of product 'WM-100'"),
    ({"defect_code": "smoke"}, ValidationError, "'smoke' is not in the defect catalogue"),
    ({"description": " "}, ValidationError, "description: must be 1 to 5000"),
    ({"channel": "pigeon"}, ValidationError, "channel"),
    ({"serial": None}, ValidationError, "give the serial, or the customer"),
    ({"sku": "NOPE", "serial": None, "customer_id": 1}, NotFound, "no product with SKU"),
])
def test_bad_claims_are_refused_and_nothing_changes(crm, catalogue, kwargs, error, message,
                                                    crmkit_recorder):
    with crm.transaction() as tx:
        register(tx, catalogue[0], "SN-1")
    crmkit_recorder.clear()
    with pytest.raises(error, match=message), crm.transaction() as tx:
        open_claim(tx, **kwargs)
    assert claim_count(crm) == 0
    assert crmkit_recorder.events() == []
    assert timeline(crm, catalogue[0]) == []


def test_a_move_the_workflow_does_not_allow_changes_nothing(crm, catalogue):
    with crm.transaction() as tx:
        register(tx, catalogue[0], "SN-1")
        claim_id = open_claim(tx).id
    with pytest.raises(Rejected, match="'close' needs 'resolved'"), crm.transaction() as tx:
        claims.move_claim(tx, claim_id, "close")
    with pytest.raises(ValidationError, match="no transition 'explode'"), \
            crm.transaction() as tx:
        claims.move_claim(tx, claim_id, "explode")
    with pytest.raises(Rejected, match="fired by the SLA timer"), crm.transaction() as tx:
        claims.move_claim(tx, claim_id, "triage_overdue")
    with pytest.raises(NotFound, match="no warranty claim with id 999"), \
            crm.transaction() as tx:
        claims.move_claim(tx, 999, "triage")
    with crm.transaction() as tx:
        assert claims.get_claim(tx.session, claim_id).state == "reported"
    assert len(timeline(crm, catalogue[0])) == 1


def test_sla_timers_escalate_through_events(crm_factory, catalogue, crmkit_recorder):
    crm = crm_factory(config={"plugin": {"warranty": {"triage_business_days": 2,
                                                      "resolution_business_days": 10}}})
    with crm.transaction() as tx:
        register(tx, catalogue[0], "SN-1")
        claim = open_claim(tx)
        claim_id, triage_due = claim.id, claim.triage_due_at
        resolution_due = claim.resolution_due_at
    assert triage_due.weekday() < 5 and (triage_due - claim.opened_at) >= dt.timedelta(days=2)
    assert fire_due_timers(crm, now=triage_due - dt.timedelta(minutes=1)).fired == 0
    assert fire_due_timers(crm, now=triage_due + dt.timedelta(minutes=1)).fired == 1
    # Not re-armed by its own self-transition: a second pass fires nothing.
    assert fire_due_timers(crm, now=triage_due + dt.timedelta(minutes=2)).fired == 0
    breach = crmkit_recorder.event("warranty.sla_breached").payload
    assert breach["sla"] == "triage" and breach["claim_id"] == claim_id
    with crm.transaction() as tx:
        claims.move_claim(tx, claim_id, "triage")
    assert fire_due_timers(crm, now=resolution_due + dt.timedelta(minutes=1)).fired == 1
    with crm.transaction() as tx:
        claim = claims.get_claim(tx.session, claim_id)
        assert (claim.state, claim.triage_breached, claim.resolution_breached) == \
            ("triaged", True, True)
    assert [e.payload["sla"] for e in crmkit_recorder.events("warranty.sla_breached")] == \
        ["triage", "resolution"]
    lines = timeline(crm, catalogue[0])
    assert "triage SLA breached" in lines[1] and "resolution SLA breached" in lines[3]


def test_resolving_in_time_cancels_the_sla_timers(crm, catalogue):
    with crm.transaction() as tx:
        register(tx, catalogue[0], "SN-1")
        claim_id = open_claim(tx).id
    with crm.transaction() as tx:
        for step in ("triage", "replace", "resolve"):
            claims.move_claim(tx, claim_id, step)
    far = dt.datetime.now(dt.UTC) + dt.timedelta(days=60)
    assert fire_due_timers(crm, now=far).fired == 0


def test_export_and_erase(crm, catalogue):
    ann = catalogue[0]
    with crm.transaction() as tx:
        register(tx, ann, "SN-1")
        open_claim(tx, description="My name is Ann and it broke")
    with crm.transaction() as tx:
        exported = tx.customers.export_data(ann)["warranty"]
        assert [u["serial"] for u in exported["units"]] == ["SN-1"]
        assert exported["claims"][0]["description"] == "My name is Ann and it broke"
        tx.customers.erase(ann)
    with crm.transaction() as tx:
        exported = tx.customers.export_data(ann)["warranty"]
        assert exported["claims"][0]["description"] == "[erased]"
