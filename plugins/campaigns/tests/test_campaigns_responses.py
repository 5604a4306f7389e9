"""Responses by API, CLI import, interactions carrying the code, and won opportunities."""

from decimal import Decimal

import pytest
from crmkit import NotFound, ValidationError
from sqlalchemy import select

from crmkit_campaigns import campaigns, launch, responses
from crmkit_campaigns.models import Consent, Member


@pytest.fixture
def running(crm, people, everyone):
    with crm.transaction() as tx:
        campaign = campaigns.add(tx, code="AUTUMN", name="Autumn", channel="email",
                                 segments=[everyone],
                                 offer={"kind": "discount", "value": "10", "code": "AUT10"})
        launch.launch(tx, campaign)
    return campaign


def member(crm, customer):
    with crm.transaction() as tx:
        return responses.member_of(tx, campaigns.get(tx.session, "AUTUMN"), customer.id)


def test_statuses_move_forward_with_timestamps(crm, people, running):
    with crm.transaction() as tx:
        campaign = campaigns.get(tx.session, "AUTUMN")
        responses.record(tx, campaign, people[0].id, "responded", at="2026-11-20T10:00:00Z")
        responses.record(tx, campaign, people[0].id, "opened")  # late news: kept, no step back
    m = member(crm, people[0])
    assert m.status == "responded"
    assert m.responded_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert m.opened_at is not None


def test_a_response_for_a_non_member_is_refused(crm, people, running):
    with crm.transaction() as tx:
        outsider = tx.customers.create(kind="person", name="Outsider")
    with pytest.raises(NotFound, match="not a member of campaign 'AUTUMN'"), \
            crm.transaction() as tx:
        responses.record(tx, campaigns.get(tx.session, "AUTUMN"), outsider.id, "responded")
    with pytest.raises(ValidationError) as info, crm.transaction() as tx:
        responses.record(tx, campaigns.get(tx.session, "AUTUMN"), people[0].id, "liked",
                         revenue="abc")
    assert {i.path for i in info.value.issues} == {"status", "revenue"}


def test_an_opt_out_response_records_consent_for_the_channel(crm, people, running):
    with crm.transaction() as tx:
        responses.record(tx, campaigns.get(tx.session, "AUTUMN"), people[1].id, "opted_out")
    with crm.transaction() as tx:
        row = tx.session.get(Consent, (people[1].id, "email"))
        assert row is not None and row.opted_in is False


def test_interactions_carrying_the_code_are_responses_and_purchases_convert(crm, people,
                                                                            running):
    with crm.transaction() as tx:
        tx.interactions.log(people[2], channel="email", kind="inquiry", summary="Question",
                            payload={"campaign": "AUTUMN"})
        tx.interactions.log(people[4], channel="web", kind="purchase", summary="Order",
                            amount="250.00", currency="EUR", payload={"offer_code": "AUT10"})
        tx.interactions.log(people[5], channel="web", kind="purchase", summary="Order",
                            amount="80.00", currency="EUR")  # no code: window attribution
        tx.interactions.log(people[5], channel="web", kind="purchase", summary="USD order",
                            amount="5.00", currency="USD")  # other currency: no revenue
    assert member(crm, people[2]).status == "responded"
    converted = member(crm, people[4])
    assert (converted.status, converted.revenue) == ("converted", Decimal("250.00"))
    assert converted.responded_at is not None
    window = member(crm, people[5])
    assert (window.status, window.revenue) == ("converted", Decimal("80.00"))
    assert window.responded_at is None


def test_import_is_all_or_nothing_and_names_the_line(crm, people, running):
    good = f"customer_id,status,revenue\n{people[0].id},converted,100.50\n"
    bad = good + f"{people[1].id},clicked,\nabc,opened,\n999999,opened,\n"
    with pytest.raises(ValidationError) as info, crm.transaction() as tx:
        responses.import_csv(tx, campaigns.get(tx.session, "AUTUMN"), bad)
    assert {i.path for i in info.value.issues} == {
        "line 3: status", "line 4: customer_id", "line 5: customer_id"}
    assert member(crm, people[0]).status == "sent"
    with crm.transaction() as tx:
        assert responses.import_csv(tx, campaigns.get(tx.session, "AUTUMN"), good) == 1
    assert member(crm, people[0]).revenue == Decimal("100.50")
    with pytest.raises(ValidationError, match="missing column"), crm.transaction() as tx:
        responses.import_csv(tx, campaigns.get(tx.session, "AUTUMN"), "who,what\n1,2\n")


def test_a_won_opportunity_event_converts_once(crm, people, running):
    payload = {"opportunity_id": 7, "customer_id": people[3].id, "amount": "1200.00",
               "currency": "EUR"}
    for _ in range(2):  # delivered twice (at least once): counted once
        with crm.transaction() as tx:
            tx.emit("sales.opportunity_won", payload)
        with crm.transaction() as tx:
            assert responses.from_opportunity(tx, payload) == 0  # already applied
    m = member(crm, people[3])
    assert (m.status, m.revenue, m.conversion_ref) == ("converted", Decimal("1200.00"),
                                                       "opportunity:7")


def test_the_plugin_works_without_sales(crm, people, running):
    with crm.transaction() as tx:
        tx.emit("sales.something_else", {"customer_id": people[3].id})
    with crm.transaction() as tx:
        assert tx.session.scalars(select(Member).where(Member.status == "converted")).all() \
            == []
