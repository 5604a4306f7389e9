"""Importing other tools' exports, and surveys triggered by automation rules."""

import json

import pytest
from crmkit import ConfigError, ValidationError
from sqlalchemy import func, select

from crmkit_surveys import catalog
from crmkit_surveys.importer import import_records, read_records
from crmkit_surveys.models import Invitation, Response


def run_import(crm, key, path, **kwargs):
    records, naming = read_records(path)
    with crm.transaction() as tx:
        return import_records(tx, catalog.get(tx.session, key), records, naming=naming,
                              **kwargs)


def responses(crm):
    with crm.session() as session:
        return session.scalars(select(Response).order_by(Response.id)).all()


def test_a_csv_export_is_imported_once(crm, people, publish, invite, tmp_path):
    key = publish()
    [token] = invite(key, [people[2]])
    path = tmp_path / "export.csv"
    path.write_text(
        "id,token,customer_id,email,submitted_at,recommend,satisfied,topics,fixed,team\n"
        f"r1,,{people[0]},,2026-03-01T10:00:00Z,10,5,a;c,yes,speed=ok;tone=good\n"
        "r2,,,bob@x.example,2026-04-02T10:00:00+02:00,4,2,,no,\n"
        f"r3,{token},,,,9,4,b,,\n", encoding="utf-8")
    result = run_import(crm, key, path)
    assert (result.imported, result.skipped, result.rejected) == (3, 0, [])
    rows = responses(crm)
    assert [r.customer_id for r in rows] == [people[0], people[1], people[2]]
    assert rows[0].answers == {"recommend": 10, "satisfied": 5, "topics": ["a", "c"],
                               "fixed": True, "team": {"speed": "ok", "tone": "good"}}
    assert rows[1].submitted_at.isoformat() == "2026-04-02T08:00:00+00:00"
    assert [r.source for r in rows] == ["import"] * 3
    with crm.session() as session:
        assert session.scalar(select(Invitation.answered)) == "complete"
    again = run_import(crm, key, path)
    assert (again.imported, again.skipped) == (0, 3)
    assert len(responses(crm)) == 3


def test_one_bad_record_imports_nothing(crm, people, publish, tmp_path):
    key = publish()
    path = tmp_path / "export.json"
    path.write_text(json.dumps([
        {"id": "a", "customer_id": people[0], "answers": {"recommend": 9, "satisfied": 5}},
        {"id": "b", "customer_id": people[1], "answers": {"recommend": 12, "satisfied": 5}},
        {"id": "c", "answers": {"recommend": 1, "satisfied": 1}},
        {"id": "d", "token": "not-a-real-token-at-all", "recommend": 1, "satisfied": 1},
    ]), encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        run_import(crm, key, path)
    assert [str(i) for i in info.value.issues] == [
        "record 1.recommend: must be from 0 to 10, got 12",
        "record 2: names no respondent: give token, customer_id or email",
        "record 3: unknown survey token (a reminder replaces the token it was sent with)",
    ]
    assert responses(crm) == []
    result = run_import(crm, key, path, skip_errors=True)
    assert result.imported == 1 and len(result.rejected) == 3
    assert result.rejected[0]["errors"] == "record 1.recommend: must be from 0 to 10, got 12"
    assert [r.external_id for r in responses(crm)] == ["a"]


def rule(**extra):
    return {"name": "survey-after-purchase", "on": "interaction.logged",
            "where": {"field": "customer.kind", "op": "eq", "value": "person"},
            "do": "send_survey", "with": {"survey": "service", **extra}}


def invited(crm, customer_id):
    with crm.session() as session:
        return session.scalar(select(func.count()).select_from(Invitation)
                              .where(Invitation.customer_id == customer_id))


def purchase(crm, customer_id):
    with crm.transaction() as tx:
        tx.interactions.log(customer_id, channel="web", kind="purchase", summary="Order")


def test_a_rule_sends_a_survey_not_more_than_once_per_period(crm_factory, publish,
                                                             crmkit_recorder):
    crm = crm_factory(config={"rules": [rule()]})
    publish(target=crm)
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Zoe")
    purchase(crm, customer.id)
    assert invited(crm, customer.id) == 1
    sent = crmkit_recorder.events("surveys.invitation_sent")
    assert sent[-1].payload["customer_id"] == customer.id
    purchase(crm, customer.id)   # within 90 days: not surveyed again
    assert invited(crm, customer.id) == 1
    with crm.session() as session:
        segment = session.scalar(select(Invitation.segment))
    assert segment == "rule:survey-after-purchase"


def test_the_period_is_configurable_per_rule(crm_factory, publish):
    crm = crm_factory(config={"rules": [rule(min_interval="PT0H")]})
    publish(target=crm)
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Zoe")
    purchase(crm, customer.id)
    with crm.transaction() as tx:  # answered: the next trigger may invite again
        tx.session.execute(Invitation.__table__.update().values(answered="complete"))
    purchase(crm, customer.id)
    assert invited(crm, customer.id) == 2


def test_a_rule_with_a_typo_stops_start_up(crm_factory):
    with pytest.raises(ConfigError, match="min_intervall"):
        crm_factory(config={"rules": [rule(min_intervall="P1D")]})
