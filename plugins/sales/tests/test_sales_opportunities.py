"""Opportunities on the pipeline workflow: create, move, win, lose; bad input changes
nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from crmkit import NotFound, Rejected, ValidationError
from sqlalchemy import func, select

from crmkit_sales import opportunities
from crmkit_sales.models import Opportunity, OpportunityLine
from crmkit_sales.pipeline import PIPELINE, SUBJECT


def add(crm, customer, **kwargs):
    args = {"title": "40 control units", "amount": "18400.00", "currency": "EUR",
            "close_date": "2026-12-15", "owner": "alice", **kwargs}
    with crm.transaction(actor="alice") as tx:
        return opportunities.create(tx, customer=customer.id, **args).id


def state(crm, opp_id):
    with crm.transaction() as tx:
        opp = tx.session.get(Opportunity, opp_id)
        instance = tx.workflows.find(PIPELINE, SUBJECT, opp_id)
        return opp.stage, opp.status, opp.reason, instance.state


def count(crm):
    with crm.transaction() as tx:
        return (tx.session.scalar(select(func.count()).select_from(Opportunity)),
                tx.session.scalar(select(func.count()).select_from(OpportunityLine)))


def test_an_opportunity_starts_in_the_first_stage(crm, acme, crmkit_recorder):
    opp_id = add(crm, acme)
    assert state(crm, opp_id) == ("qualification", "open", None, "qualification")
    with crm.transaction() as tx:
        data = opportunities.to_dict(tx, opportunities.get(tx, opp_id))
    assert (data["amount"], data["probability"], data["weighted"], data["category"]) == (
        "18400.00", 10, "1840.00", "pipeline")
    assert crmkit_recorder.event("sales.opportunity_created").payload["amount"] == "18400.00"


def test_lines_make_the_amount(crm, acme):
    opp_id = add(crm, acme, amount=None, lines=[
        {"item": "Control unit", "domain": "products", "quantity": "40", "unit_price": "400"},
        {"item": "Installation", "domain": "services", "quantity": "2", "unit_price": "1200"}])
    with crm.transaction() as tx:
        data = opportunities.to_dict(tx, opportunities.get(tx, opp_id))
    assert data["amount"] == "18400.00"
    assert [(line["item"], line["total"]) for line in data["lines"]] == [
        ("Control unit", "16000.00"), ("Installation", "2400.00")]


@pytest.mark.parametrize("kwargs, message", [
    ({"amount": "-1"}, "amount: must not be negative"),
    ({"amount": 12.5}, "never a float|not.*float|decimal number"),
    ({"amount": "lots"}, "'lots' is not a number"),
    ({"currency": "XYZ"}, "'XYZ' is not an ISO 4217 currency code"),
    ({"close_date": "31.12.2026"}, "close_date: '31.12.2026' is not a date"),
    ({"close_date": "2026-02-30"}, "is not a date"),
    ({"title": " "}, "title: is required"),
    ({"probability": 120}, "probability: must be an integer from 0 to 100"),
    ({"amount": "1", "lines": [{"item": "A", "domain": "products", "quantity": "1",
                                "unit_price": "2"}]}, "differs from the lines' total 2"),
    ({"lines": [{"item": "A", "domain": "catering", "quantity": "1", "unit_price": "2"}]},
     "lines\\[0\\].domain: 'catering' is not one of"),
    ({"lines": [{"item": "A", "domain": "products", "quantity": "1", "unit_price": "-2"}]},
     "lines\\[0\\].unit_price: must not be negative"),
])
def test_bad_input_is_refused_and_nothing_is_written(crm, acme, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        add(crm, acme, **kwargs)
    assert count(crm) == (0, 0)


def test_an_unknown_customer_is_refused(crm):
    with pytest.raises(NotFound, match="no customer with id 999"), crm.transaction() as tx:
        opportunities.create(tx, customer=999, title="x", amount="1", close_date="2026-01-01")


def test_moves_follow_the_workflow(crm, acme):
    opp_id = add(crm, acme)
    with pytest.raises(Rejected, match="does not allow moving from 'qualification' to "
                                       "'negotiation'; from 'qualification' it allows: "
                                       "lost, needs_analysis, won"), crm.transaction() as tx:
        opportunities.move(tx, opp_id, "negotiation")
    with pytest.raises(ValidationError, match="'legal' is not a stage"), \
            crm.transaction() as tx:
        opportunities.move(tx, opp_id, "legal")
    with pytest.raises(ValidationError, match="use 'win' with a reason"), \
            crm.transaction() as tx:
        opportunities.move(tx, opp_id, "won")
    assert state(crm, opp_id)[0] == "qualification"
    with crm.transaction() as tx:
        for stage in ("needs_analysis", "proposal", "negotiation", "proposal"):
            opportunities.move(tx, opp_id, stage)
    assert state(crm, opp_id) == ("proposal", "open", None, "proposal")


def test_won_and_lost_are_announced(crm, acme, crmkit_recorder):
    won, lost = add(crm, acme), add(crm, acme, amount="99.5", owner="bob")
    with crm.transaction() as tx:
        opportunities.close(tx, won, won=True, reason="fit")
        opportunities.close(tx, lost, won=False, reason="price")
    assert crmkit_recorder.event("sales.opportunity_won").payload == {
        "opportunity_id": won, "customer_id": acme.id, "amount": "18400.00",
        "currency": "EUR", "reason": "fit", "owner": "alice"}
    assert crmkit_recorder.event("sales.opportunity_lost").payload["amount"] == "99.50"


def test_winning_needs_a_reason(crm, acme):
    opp_id = add(crm, acme)
    for reason in (None, "", "   "):
        with pytest.raises(ValidationError, match="winning an opportunity needs a reason"), \
                crm.transaction() as tx:
            opportunities.close(tx, opp_id, won=True, reason=reason)
    assert state(crm, opp_id) == ("qualification", "open", None, "qualification")
    with crm.transaction(actor="alice") as tx:
        opportunities.close(tx, opp_id, won=True, reason="best delivery time")
    assert state(crm, opp_id) == ("won", "won", "best delivery time", "won")
    with crm.transaction() as tx:
        opp = opportunities.get(tx, opp_id)
        assert opp.closed_at is not None
        won = tx.interactions.timeline(acme)[0]
        assert won.summary.endswith("won: best delivery time")
        assert (won.amount, won.currency) == (Decimal("18400"), "EUR")
    with pytest.raises(Rejected, match="allows: nothing"), crm.transaction() as tx:
        opportunities.move(tx, opp_id, "proposal")
    with pytest.raises(Rejected), crm.transaction() as tx:
        opportunities.close(tx, opp_id, won=False, reason="price")


def test_losing_needs_a_configured_reason(crm_factory, acme):
    crm = crm_factory(config={"plugin": {"sales": {"lost_reasons": ["price", "went dark"]}}})
    opp_id = add(crm, acme)
    with pytest.raises(ValidationError, match="'competitor' is not a lost reason; "
                                              "configured: price, went dark"), \
            crm.transaction() as tx:
        opportunities.close(tx, opp_id, won=False, reason="competitor")
    with crm.transaction() as tx:
        opportunities.close(tx, opp_id, won=False, reason="went dark")
    assert state(crm, opp_id) == ("lost", "lost", "went dark", "lost")


def test_the_kernels_workflow_commands_cannot_skip_the_reason(crm, acme):
    opp_id = add(crm, acme)
    with crm.transaction() as tx:
        instance = tx.workflows.find(PIPELINE, SUBJECT, opp_id)
        with pytest.raises(ValidationError, match="needs a reason"):
            tx.workflows.fire(instance, "win")
    with crm.transaction() as tx:
        tx.workflows.fire(tx.workflows.find(PIPELINE, SUBJECT, opp_id), "lose",
                          data={"reason": "price"})
    assert state(crm, opp_id)[:3] == ("lost", "lost", "price")


def test_integrators_can_extend_the_pipeline(crm_factory, acme):
    crm = crm_factory(config={
        "workflows": {"sales_pipeline": {"mode": "extend", "states": ["legal_review"],
                                         "transitions": [
            {"name": "to_legal", "from": "negotiation", "to": "legal_review"},
            {"name": "legal_ok", "from": "legal_review", "to": "won"}]}},
        "plugin": {"sales": {"stages": {"legal_review": {"probability": 90,
                                                         "category": "commit"}}}},
    })
    opp_id = add(crm, acme)
    with crm.transaction() as tx:
        for stage in ("needs_analysis", "proposal", "negotiation", "legal_review"):
            opportunities.move(tx, opp_id, stage)
        data = opportunities.to_dict(tx, opportunities.get(tx, opp_id))
    assert (data["stage"], data["probability"], data["category"]) == (
        "legal_review", 90, "commit")
    with crm.transaction() as tx:
        opportunities.close(tx, opp_id, won=True, reason="signed")
    assert state(crm, opp_id)[1] == "won"


def test_integrators_can_replace_the_pipeline(crm_factory, acme):
    crm = crm_factory(config={"workflows": {"sales_pipeline": {
        "mode": "replace", "subject": "sales_opportunity", "initial": "lead_in",
        "states": ["lead_in", "quoted", "won", "lost"], "final": ["won", "lost"],
        "transitions": [{"name": "quote", "from": "lead_in", "to": "quoted"},
                        {"name": "win", "from": "quoted", "to": "won"},
                        {"name": "lose", "from": ["lead_in", "quoted"], "to": "lost"}]}}})
    opp_id = add(crm, acme)
    assert state(crm, opp_id)[0] == "lead_in"
    with pytest.raises(Rejected, match="allows: lost, quoted"), crm.transaction() as tx:
        opportunities.close(tx, opp_id, won=True, reason="fast")
    with crm.transaction() as tx:
        opportunities.move(tx, opp_id, "quoted")
        opportunities.close(tx, opp_id, won=True, reason="fast")
    assert state(crm, opp_id)[1] == "won"


def test_a_probability_override(crm, acme):
    opp_id = add(crm, acme, probability=60, close_date=dt.date(2027, 1, 5))
    with crm.transaction() as tx:
        data = opportunities.to_dict(tx, opportunities.get(tx, opp_id))
    assert (data["probability"], data["weighted"], data["close_date"]) == (
        60, "11040.00", "2027-01-05")


def test_criteria_fields_agree_in_sql_and_python(crm, acme):
    from crmkit.criteria import CustomerRecord
    from crmkit.models import Customer

    from crmkit_sales.criteria import extra_for

    other = None
    with crm.transaction() as tx:
        other = tx.customers.create(kind="person", name="Nobody")
    won, _open = add(crm, acme), add(crm, acme)
    with crm.transaction() as tx:
        opportunities.close(tx, won, won=True, reason="fit")
    criteria = crm.criteria_fields.compile({"all": [
        {"field": "sales.open_opportunities", "op": "gte", "value": 1},
        {"field": "sales.won_opportunities", "op": "eq", "value": 1}]})
    with crm.transaction() as tx:
        matched = tx.session.scalars(select(Customer.id).where(criteria.to_sql())).all()
        assert matched == [acme.id]
        for customer in (acme, other):
            record = CustomerRecord.of(tx.customers.get(customer.id),
                                       extra=extra_for(tx.session, customer.id))
            assert criteria.evaluate(record) is (customer.id == acme.id)
