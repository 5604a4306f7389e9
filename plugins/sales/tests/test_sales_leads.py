"""Leads: capture, de-duplication, scoring, qualification, conversion (atomic), import."""

import json

import pytest
from crmkit import Conflict, PluginError, Rejected, ValidationError, hookimpl
from crmkit.models import Customer
from sqlalchemy import func, select

from crmkit_sales import imports, leads, tasks
from crmkit_sales.models import Lead, Opportunity


def capture(crm, **record):
    with crm.transaction(actor="alice") as tx:
        return leads.capture(tx, {"source": "web", **record}).id


def counts(crm):
    with crm.transaction() as tx:
        return tuple(tx.session.scalar(select(func.count()).select_from(model))
                     for model in (Customer, Opportunity, Lead))


def test_a_lead_is_captured_and_announced(crm, crmkit_recorder):
    lead_id = capture(crm, contact_name="Jana Novak", company="Nordwerk AG",
                      email="Jana@Nordwerk.example", campaign="fair-2026")
    with crm.transaction() as tx:
        lead = leads.get(tx, lead_id)
        assert (lead.email, lead.status, lead.source) == ("jana@nordwerk.example", "new", "web")
    assert crmkit_recorder.event("sales.lead_captured").payload == {
        "lead_id": lead_id, "source": "web", "campaign": "fair-2026"}


@pytest.mark.parametrize("record, message", [
    ({"company": "X"} | {"source": ""}, "source: is required"),
    ({"source": "web"}, "contact_name: a lead needs a contact name or a company"),
    ({"source": "web", "company": "X", "email": "not-an-email"}, "is not an e-mail address"),
    ({"source": "web", "company": "X", "colour": "red"}, "colour: unknown lead field"),
    ({"source": "web", "company": "X", "country": "Latvia"}, "country:"),
])
def test_bad_leads_are_refused(crm, record, message):
    with pytest.raises(ValidationError, match=message), crm.transaction() as tx:
        leads.capture(tx, record)
    assert counts(crm)[2] == 0


def test_duplicates_of_customers_and_leads_are_refused(crm, acme):
    with pytest.raises(Conflict, match=f"customer {acme.id} has the e-mail"):
        capture(crm, company="Someone", email="INFO@acme.example")
    with pytest.raises(Conflict, match=f"customer {acme.id} is named 'Acme GmbH'"):
        capture(crm, company="acme gmbh")
    first = capture(crm, contact_name="Ola Nordmann", email="ola@example.no")
    with pytest.raises(Conflict, match=f"lead {first} has the e-mail"):
        capture(crm, contact_name="O. Nordmann", email="ola@example.no")
    with pytest.raises(Conflict, match=f"lead {first} is named 'Ola Nordmann'"):
        capture(crm, contact_name="ola nordmann")
    assert counts(crm)[2] == 1
    with crm.transaction() as tx:
        leads.capture(tx, {"source": "web", "contact_name": "Ola Nordmann"}, force=True)


def test_the_score_explains_itself(crm_factory):
    crm = crm_factory(config={"plugin": {"sales": {"scoring": {
        "sources": {"referral": 40},
        "fields": [{"field": "company", "points": 10}, {"field": "country", "value": "LV",
                                                         "points": 15}],
        "activity_points": 7, "activity_max": 10}}}})
    lead_id = capture(crm, company="Baltic Sensors", country="lv", source="referral")
    with crm.transaction() as tx:
        for _ in range(2):
            task = tasks.add(tx, kind="call", title="Intro call", due="2026-01-01", lead=lead_id)
            tasks.complete(tx, task.id, "interested")
        total, why = leads.score(tx, leads.get(tx, lead_id))
    assert why == [
        {"points": 40, "why": "source is referral"},
        {"points": 10, "why": "has a company"},
        {"points": 15, "why": "country is LV"},
        {"points": 10, "why": "2 activities in the last 30 days (7 each, at most 10)"},
    ]
    assert total == 75


def test_qualify_and_disqualify(crm, crmkit_recorder):
    lead_id = capture(crm, company="Nordwerk AG")
    with pytest.raises(ValidationError, match="reason: is required"), crm.transaction() as tx:
        leads.set_status(tx, lead_id, "disqualified", "  ")
    with crm.transaction() as tx:
        leads.set_status(tx, lead_id, "disqualified", "no budget")
    with pytest.raises(Rejected, match="is disqualified"), crm.transaction() as tx:
        leads.convert(tx, lead_id)
    with crm.transaction() as tx:
        lead = leads.set_status(tx, lead_id, "qualified", "budget approved")
        assert (lead.status, lead.status_reason) == ("qualified", "budget approved")
    assert crmkit_recorder.event("sales.lead_qualified").payload["reason"] == "budget approved"


def test_conversion_creates_organization_contact_and_opportunity_with_history(crm, next_month):
    lead_id = capture(crm, contact_name="Jana Novak", company="Nordwerk AG", title="buyer",
                      email="jana@nordwerk.example", campaign="fair-2026", owner="alice")
    with crm.transaction() as tx:
        task = tasks.add(tx, kind="meeting", title="Demo", due="2026-01-10", lead=lead_id)
        tasks.complete(tx, task.id, "wants a quote")
        open_task = tasks.add(tx, kind="call", title="Follow up", due="2030-01-01",
                              lead=lead_id)
        leads.set_status(tx, lead_id, "qualified", "budget ok")
    with crm.transaction(actor="alice") as tx:
        result = leads.convert(tx, lead_id, amount="12000.50", currency="eur",
                               close_date=next_month.isoformat())
    with crm.transaction() as tx:
        org = tx.customers.get(result.customer_id)
        person = tx.customers.get(result.contact_id)
        assert (org.kind, org.name, org.status, org.owner) == (
            "organization", "Nordwerk AG", "prospect", "alice")
        assert (person.name, person.email) == ("Jana Novak", "jana@nordwerk.example")
        assert [(p.id, role) for p, role in tx.customers.contacts(org)] == [(person.id, "buyer")]
        opp = tx.session.get(Opportunity, result.opportunity_id)
        assert (opp.customer_id, str(opp.amount.normalize()), opp.currency, opp.close_date,
                opp.lead_id, opp.stage) == (org.id, "12000.5", "EUR", next_month, lead_id,
                                            "qualification")
        timeline = [i.summary for i in tx.interactions.timeline(org)]
        assert timeline[-1] == f"Lead {lead_id} captured from web (campaign fair-2026)"
        assert "Demo: wants a quote" in timeline
        assert f"Lead {lead_id} qualified: budget ok" in timeline
        assert tasks.get(tx, open_task.id).customer_id == org.id
        lead = leads.get(tx, lead_id)
        assert (lead.status, lead.customer_id, lead.opportunity_id) == (
            "converted", org.id, opp.id)


def test_a_lead_without_company_becomes_a_person(crm):
    lead_id = capture(crm, contact_name="Peteris Ozols", email="p@example.lv")
    with crm.transaction() as tx:
        result = leads.convert(tx, lead_id)
        assert tx.customers.get(result.customer_id).kind == "person"
        assert result.contact_id is None


def test_converting_twice_is_refused_and_changes_nothing(crm):
    lead_id = capture(crm, company="Nordwerk AG")
    with crm.transaction() as tx:
        leads.convert(tx, lead_id)
    before = counts(crm)
    with pytest.raises(Conflict, match="already converted"), crm.transaction() as tx:
        leads.convert(tx, lead_id)
    assert counts(crm) == before


@pytest.mark.parametrize("kwargs, message", [
    ({"amount": "-5"}, "amount: must not be negative"),
    ({"currency": "EUX"}, "'EUX' is not an ISO 4217 currency code"),
    ({"close_date": "next friday"}, "close_date: 'next friday' is not a date"),
])
def test_bad_conversion_input_changes_nothing(crm, kwargs, message):
    lead_id = capture(crm, contact_name="Jana Novak", company="Nordwerk AG")
    with pytest.raises(ValidationError, match=message), crm.transaction() as tx:
        leads.convert(tx, lead_id, **kwargs)
    assert counts(crm) == (0, 0, 1)


class Saboteur:
    """A plugin that fails late in the conversion: while the lead's history is copied."""

    @hookimpl
    def interaction_logged(self, tx, interaction):
        if interaction.kind == "sales_activity":
            raise RuntimeError("timeline is read-only today")


class OpportunityVeto:
    """A plugin that fails at the very end: when the opportunity is announced."""

    @hookimpl
    def handle_event(self, crm, event):  # post-commit: must never be reached
        raise AssertionError("nothing may commit")

    @hookimpl
    def before_customer_save(self, tx, values, customer):
        if values["kind"] == "person":
            raise Rejected("no persons today")


@pytest.mark.parametrize("plugin, error", [(Saboteur(), PluginError),
                                           (OpportunityVeto(), Rejected)])
def test_conversion_is_atomic_when_a_plugin_raises(crm_factory, plugin, error, crmkit_recorder):
    crm = crm_factory(plugins={"saboteur": plugin})
    lead_id = capture(crm, contact_name="Jana Novak", company="Nordwerk AG")
    crmkit_recorder.clear()
    with pytest.raises(error), crm.transaction() as tx:
        leads.convert(tx, lead_id, amount="100")
    assert counts(crm) == (0, 0, 1)
    with crm.transaction() as tx:
        assert leads.get(tx, lead_id).status == "new"
    assert crmkit_recorder.events() == []


def test_import_is_all_or_nothing_and_skips_duplicates(crm, tmp_path, acme):
    good = tmp_path / "leads.csv"
    good.write_text("company,contact_name,email,source\n"
                    "Nordwerk AG,Jana Novak,jana@nordwerk.example,fair\n"
                    "Acme GmbH,,,\n"
                    ",Peteris Ozols,p@example.lv,\n", encoding="utf-8")
    with crm.transaction() as tx:
        result = imports.import_leads(tx, imports.read_records(good), source="import")
    assert len(result.created) == 2 and len(result.duplicates) == 1
    assert "customer" in result.duplicates[0]["reason"]
    with crm.transaction() as tx:  # idempotent: a second run captures nothing
        again = imports.import_leads(tx, imports.read_records(good), source="import")
    assert again.created == [] and len(again.duplicates) == 3
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"company": "Fine Ltd", "source": "web"},
                               {"company": "Broken", "source": "web", "email": "nope"}]))
    with pytest.raises(ValidationError, match="record 2: email"), crm.transaction() as tx:
        imports.import_leads(tx, imports.read_records(bad))
    assert counts(crm)[2] == 2
    with crm.transaction() as tx:
        skipped = imports.import_leads(tx, imports.read_records(bad), on_error="skip")
    assert len(skipped.created) == 1 and skipped.rejected[0]["record"] == 2
    assert counts(crm)[2] == 3


def test_an_event_captures_a_lead_through_an_automation_rule(crm_factory):
    crm = crm_factory(config={"rules": [{
        "name": "web-form-leads", "on": "web.form_submitted", "do": "sales_capture_lead",
        "with": {"source": "web", "campaign": "winter-sale"}}]})
    form = {"company": "Frostline Oy", "contact_name": "Aino Virtanen",
            "email": "aino@frostline.example", "utm": "ignored"}
    for _ in range(2):  # the same form twice: the duplicate is skipped, not an error
        with crm.transaction(actor="web") as tx:
            tx.emit("web.form_submitted", form)
    with crm.transaction() as tx:
        (lead,) = tx.session.scalars(select(Lead)).all()
        assert (lead.company, lead.email, lead.source, lead.campaign) == (
            "Frostline Oy", "aino@frostline.example", "web", "winter-sale")


def test_two_concurrent_conversions_make_one_customer(crm, crmkit_database_url):
    import threading

    from crmkit import CrmkitError

    # On PostgreSQL and MariaDB both transactions read the lead before either converts it.
    # SQLite runs writers one after the other (BEGIN IMMEDIATE), so there the second only
    # starts once the first committed, and must see the lead converted.
    serial = crmkit_database_url.startswith("sqlite")
    lead_id = capture(crm, company="Nordwerk AG")
    barrier = threading.Barrier(1 if serial else 2)
    outcomes = []

    def convert():
        try:
            with crm.transaction() as tx:
                leads.get(tx, lead_id)
                barrier.wait(timeout=10)
                leads.convert(tx, lead_id)
            outcomes.append("converted")
        except (Conflict if not serial else CrmkitError) as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=convert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    refused = "already converted" if serial else "someone else"
    assert sorted(outcomes)[0] == "converted" and refused in sorted(outcomes)[1]
    assert counts(crm) == (1, 1, 1)
