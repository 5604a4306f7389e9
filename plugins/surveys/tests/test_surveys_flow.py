"""Versions, invitations, responses and events in real transactions (every backend)."""

import datetime as dt

import pytest
from crmkit import Conflict, NotFound, Rejected, ValidationError
from crmkit.db import utcnow
from sqlalchemy import func, select, update

from crmkit_surveys import catalog, invitations
from crmkit_surveys.invitations import hash_token
from crmkit_surveys.models import Invitation, Response, Survey
from crmkit_surveys.responses import respond
from crmkit_surveys.settings import Settings

ANSWERS = {"recommend": 9, "satisfied": 5}


def count(crm, model):
    with crm.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_versions_draft_published_immutable(crm, doc, crmkit_recorder):
    with crm.transaction() as tx:
        assert catalog.add(tx, doc).version == 1
        doc["title"] = "Service feedback (draft 2)"
        draft = catalog.add(tx, doc)                  # replaces the draft
        assert (draft.version, draft.title) == (1, "Service feedback (draft 2)")
        catalog.publish(tx, "service")
    assert crmkit_recorder.event("surveys.published").payload["version"] == 1
    with crm.transaction() as tx:
        assert catalog.add(tx, doc).version == 1      # unchanged: still the published one
        doc["pages"][0]["questions"][0]["text"] = "Would you recommend us?"
        new = catalog.add(tx, doc)
        assert (new.version, new.status) == (2, "draft")
        published = catalog.get(tx.session, "service", published=True)
        assert published.version == 1
        assert published.definition["pages"][0]["questions"][0]["text"] == "Recommend us?"
        catalog.publish(tx, "service")
    with crm.session() as session:
        rows = session.execute(select(Survey.version, Survey.status).order_by(Survey.version))
        assert rows.all() == [(1, "closed"), (2, "published")]


def test_publishing_needs_a_draft(crm, publish):
    publish()
    with pytest.raises(Conflict, match="has no draft to publish"), crm.transaction() as tx:
        catalog.publish(tx, "service")
    with pytest.raises(NotFound, match="no survey 'nope'"), crm.transaction() as tx:
        catalog.publish(tx, "nope")


def test_a_draft_cannot_be_sent(crm, doc, people):
    with crm.transaction() as tx:
        catalog.add(tx, doc)
    with pytest.raises(Conflict, match="is not published"), crm.transaction() as tx:
        catalog.get(tx.session, "service", published=True)


def test_a_malformed_document_changes_nothing(crm, doc):
    doc["pages"] = []
    with pytest.raises(ValidationError, match="pages: has 0 items"), crm.transaction() as tx:
        catalog.add(tx, doc)
    assert count(crm, Survey) == 0


def test_sending_writes_invitations_events_and_timeline(crm, people, publish, crmkit_recorder):
    key = publish()
    with crm.transaction() as tx:
        survey = catalog.get(tx.session, key, published=True)
        recipients = invitations.by_criteria(
            tx, {"field": "customer.kind", "op": "eq", "value": "person"})
        sent = invitations.send(tx, survey, recipients, Settings.of(crm))
    assert [s.invitation.customer_id for s in sent] == people[1:]
    events = crmkit_recorder.events("surveys.invitation_sent")
    assert len(events) == 3
    first = events[0].payload
    assert first["customer_id"] == people[1] and first["email"] == "bob@x.example"
    assert first["link"] == f"https://surveys.example.com/s/{sent[0].token}"
    assert len(sent[0].token) >= 40  # 32 random bytes
    with crm.session() as session:
        stored = session.scalars(select(Invitation.token_hash)).all()
    assert sent[0].token not in stored and hash_token(sent[0].token) in stored
    with crm.transaction() as tx:
        [entry] = tx.interactions.timeline(people[1])
    assert (entry.kind, entry.direction, entry.channel) == ("survey_invitation", "outbound",
                                                            "email")
    assert entry.payload["survey"] == "service"


def test_sending_again_reaches_only_newcomers(crm, people, publish, invite):
    key = publish()
    assert len(invite(key, people[:2])) == 2
    assert len(invite(key, people)) == 2


def test_segments_come_from_the_config(crm_factory, publish, invite):
    crm = crm_factory(config={"plugin": {"surveys": {"segments": {
        "vips": {"field": "customer.tags", "op": "contains", "value": "vip"}}}}})
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Eve", tags=["vip"])
        tx.customers.create(kind="person", name="Fay")
    key = publish(target=crm)
    with crm.transaction() as tx:
        survey = catalog.get(tx.session, key)
        recipients = invitations.by_segment(tx, "vips", Settings.of(crm))
        assert [r.segment for r in recipients] == ["vips"]
        with pytest.raises(NotFound, match="no segment 'nope'"):
            invitations.by_segment(tx, "nope", Settings.of(crm))
        assert len(invitations.send(tx, survey, recipients, Settings.of(crm))) == 1


def test_a_response_is_validated_logged_and_announced(crm, people, publish, invite,
                                                      crmkit_recorder):
    key = publish()
    [token] = invite(key, [people[1]])
    with crm.transaction() as tx:
        response = respond(tx, token, {"recommend": 3, "why": "slow", "satisfied": 2})
    assert response.status == "complete" and response.customer_id == people[1]
    recorded = crmkit_recorder.event("surveys.response_recorded").payload
    assert recorded == {"survey": "service", "version": 1, "response_id": response.id,
                        "customer_id": people[1], "status": "complete",
                        "nps": {"recommend": 3}}
    detractor = crmkit_recorder.event("surveys.detractor").payload
    assert detractor == {"survey": "service", "version": 1, "response_id": response.id,
                         "customer_id": people[1], "question": "recommend", "score": 3}
    with crm.transaction() as tx:
        latest = tx.interactions.timeline(people[1])[0]
    assert (latest.kind, latest.direction) == ("feedback", "inbound")
    assert latest.summary == "Survey response: Service feedback (v1), recommend=3"


def test_promoters_and_passives_are_no_detractors(crm, people, publish, invite,
                                                  crmkit_recorder):
    key = publish()
    tokens = invite(key, people[1:3])
    with crm.transaction() as tx:
        respond(tx, tokens[0], {"recommend": 7, "satisfied": 4})
        respond(tx, tokens[1], {"recommend": 10, "satisfied": 4})
    assert crmkit_recorder.events("surveys.detractor") == []


@pytest.mark.parametrize(("answers", "message"), [
    ({"recommend": 11, "satisfied": 5}, "recommend: must be from 0 to 10"),
    ({"recommend": 9}, "satisfied: is required"),
    ({**ANSWERS, "colour": "red"}, "colour: no such question"),
])
def test_bad_answers_change_nothing(crm, people, publish, invite, crmkit_recorder, answers,
                                    message):
    key = publish()
    [token] = invite(key, [people[1]])
    before = len(crmkit_recorder.events())
    with pytest.raises(ValidationError, match=message), crm.transaction() as tx:
        respond(tx, token, answers)
    assert count(crm, Response) == 0
    assert len(crmkit_recorder.events()) == before
    with crm.session() as session:
        assert session.scalar(select(Invitation.answered)) is None


def test_unknown_expired_and_twice(crm, people, publish, invite):
    key = publish()
    tokens = invite(key, people[1:3])
    with pytest.raises(NotFound, match="unknown survey token"), crm.transaction() as tx:
        respond(tx, tokens[0] + "x", ANSWERS)
    with crm.transaction() as tx:
        respond(tx, tokens[0], ANSWERS)
    with pytest.raises(Conflict, match="already answered"), crm.transaction() as tx:
        respond(tx, tokens[0], ANSWERS)
    with crm.transaction() as tx:
        tx.session.execute(update(Invitation).where(Invitation.customer_id == people[2])
                           .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    with pytest.raises(Rejected, match="this survey link expired on"), crm.transaction() as tx:
        respond(tx, tokens[1], ANSWERS)
    assert count(crm, Response) == 1


def test_a_partial_response_is_kept_then_completed(crm, people, publish, invite,
                                                   crmkit_recorder):
    key = publish()
    [token] = invite(key, [people[1]])
    with crm.transaction() as tx:
        first = respond(tx, token, {"recommend": 2}, partial=True)
    assert first.status == "partial"
    with crm.transaction() as tx:
        second = respond(tx, token, {"recommend": 2, "satisfied": 3})
    assert (second.id, second.status) == (first.id, "complete")
    assert count(crm, Response) == 1
    # the detractor was announced once, when the score arrived
    assert len(crmkit_recorder.events("surveys.detractor")) == 1


def test_reminders_go_to_those_who_have_not_answered(crm, people, publish, invite,
                                                     crmkit_recorder):
    key = publish()
    tokens = invite(key, people[1:4])
    with crm.transaction() as tx:
        respond(tx, tokens[0], ANSWERS)
        respond(tx, tokens[1], {"recommend": 9}, partial=True)
    settings = Settings.of(crm)
    with crm.transaction() as tx:
        survey = catalog.get(tx.session, key)
        assert invitations.remind(tx, survey, settings) == []  # too early
    later = utcnow() + dt.timedelta(days=4)
    with crm.transaction() as tx:
        reminded = invitations.remind(tx, survey, settings, now=later)
    assert sorted(r.invitation.customer_id for r in reminded) == [people[2], people[3]]
    assert [e.payload["reminder"] for e in crmkit_recorder.events("surveys.reminder_sent")] == \
        [1, 1]
    # the old link stops working, the new one works
    with pytest.raises(NotFound), crm.transaction() as tx:
        respond(tx, tokens[2], ANSWERS)
    new = {r.invitation.customer_id: r.token for r in reminded}
    with crm.transaction() as tx:
        respond(tx, new[people[3]], ANSWERS)
        assert invitations.remind(tx, survey, settings, now=later) == []  # just reminded
        again = invitations.remind(tx, survey, settings, now=later + dt.timedelta(days=4))
        assert [r.invitation.customer_id for r in again] == [people[2]]
        third = invitations.remind(tx, survey, settings, now=later + dt.timedelta(days=8))
        assert third == []  # max_reminders = 2
        with_timeline = tx.interactions.timeline(people[2])
    assert [i.summary.split(":")[0] for i in with_timeline].count("Survey reminder") == 2


def test_the_version_answered_is_the_version_sent(crm, doc, people, publish, invite):
    key = publish()
    [token] = invite(key, [people[1]])
    doc["pages"][0]["questions"].append(
        {"id": "extra", "type": "yes_no", "text": "New?", "required": True})
    with crm.transaction() as tx:
        catalog.add(tx, doc)
        catalog.publish(tx, key)
    with crm.transaction() as tx:
        response = respond(tx, token, ANSWERS)  # v1 has no "extra" question
        assert tx.session.get(Survey, response.survey_id).version == 1


def test_sending_refuses_the_wrong_audience(crm, people, publish):
    from surveys_samples import EMPLOYEE_DOC

    key = publish(EMPLOYEE_DOC)
    with pytest.raises(ValidationError, match="is for employees"), crm.transaction() as tx:
        invitations.send(tx, catalog.get(tx.session, key),
                         [invitations.Recipient(customer_id=people[0])], Settings.of(crm))


def test_the_worker_sends_due_reminders_by_itself(crm, people, publish, invite,
                                                 crmkit_recorder):
    from crmkit_surveys import run_periodic

    key = publish()
    invite(key, people[1:3])
    run_periodic(crm, utcnow())  # too early: nothing
    assert crmkit_recorder.events("surveys.reminder_sent") == []
    later = utcnow() + dt.timedelta(days=4)
    run_periodic(crm, later)
    run_periodic(crm, later)  # a second worker pass at the same moment reminds nobody twice
    reminded = sorted(e.payload["customer_id"]
                      for e in crmkit_recorder.events("surveys.reminder_sent"))
    assert reminded == sorted(people[1:3])


def test_auto_remind_can_be_switched_off(crm, crm_factory, people, publish, invite,
                                        crmkit_recorder):
    from crmkit_surveys import run_periodic

    invite(publish(), people[1:3])  # due for reminders four days later
    later = utcnow() + dt.timedelta(days=4)
    quiet = crm_factory(config={"plugin": {"surveys": {"auto_remind": False}}})
    run_periodic(quiet, later)
    assert crmkit_recorder.events("surveys.reminder_sent") == []
    run_periodic(crm, later)  # the same database, auto_remind on (the default)
    assert len(crmkit_recorder.events("surveys.reminder_sent")) == 2
