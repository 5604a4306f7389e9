"""Reports: response rate, scores, groups, anonymity and its minimum group size."""

import datetime as dt
import json

import pytest
from crmkit import Conflict
from sqlalchemy import select
from surveys_samples import EMPLOYEE_DOC

from crmkit_surveys import catalog, invitations
from crmkit_surveys.models import Invitation, Response
from crmkit_surveys.reports import build_report, flat_rows
from crmkit_surveys.responses import respond
from crmkit_surveys.settings import Settings


def report(crm, key, **kwargs):
    with crm.session() as session:
        return build_report(session, catalog.get(session, key), **kwargs)


def test_the_worked_example(crm, people, publish, invite):
    # 4 invited, 3 answered: NPS 10, 8, 2 -> promoters 1, detractors 1 -> 0.0;
    # satisfied 5, 4, 1 -> CSAT 2/3 = 66.7 %; response rate 3/4 = 75 %.
    key = publish()
    tokens = invite(key, people)
    with crm.transaction() as tx:
        respond(tx, tokens[0], {"recommend": 10, "satisfied": 5, "effort": 7})
        respond(tx, tokens[1], {"recommend": 8, "satisfied": 4, "effort": 6})
        respond(tx, tokens[2], {"recommend": 2, "why": "Too slow", "satisfied": 1,
                                "effort": 2})
    data = report(crm, key)
    assert (data["invitations"], data["responses"], data["response_rate"]) == (4, 3, 75.0)
    by_id = {q["question"]: q for q in data["questions"]}
    assert (by_id["recommend"]["nps"], by_id["recommend"]["promoters"],
            by_id["recommend"]["passives"], by_id["recommend"]["detractors"]) == (0.0, 1, 1, 1)
    assert by_id["satisfied"]["csat"] == 66.7
    assert by_id["effort"]["ces"] == 5.0 and by_id["effort"]["easy_percent"] == 66.7
    assert data["free_text"] == [{"question": "why", "text": "Too slow",
                                  "response_id": data["free_text"][0]["response_id"],
                                  "customer_id": people[2]}]
    assert "text" not in {q["type"] for q in data["questions"]}


def test_partial_responses_count_only_when_asked(crm, people, publish, invite):
    key = publish()
    tokens = invite(key, people[:2])
    with crm.transaction() as tx:
        respond(tx, tokens[0], {"recommend": 10, "satisfied": 5})
        respond(tx, tokens[1], {"recommend": 0}, partial=True)
    data = report(crm, key)
    assert (data["responses"], data["partial"], data["response_rate"]) == (1, 1, 50.0)
    assert data["questions"][0]["nps"] == 100.0
    assert report(crm, key, include_partial=True)["questions"][0]["nps"] == 0.0


def test_groups_by_segment_and_month(crm, people, publish, invite):
    key = publish()
    tokens = invite(key, people[:2])
    with crm.transaction() as tx:
        survey = catalog.get(tx.session, key)
        sent = invitations.send(tx, survey, [invitations.Recipient(customer_id=people[3],
                                                                   segment="vips")],
                                Settings.of(crm))
        respond(tx, tokens[0], {"recommend": 10, "satisfied": 5})
        respond(tx, sent[0].token, {"recommend": 6, "satisfied": 5})
    data = report(crm, key, by="segment")
    groups = {g["group"]: g for g in data["groups"]}
    assert set(groups) == {"customers", "vips"}
    assert (groups["customers"]["invitations"], groups["customers"]["responses"],
            groups["customers"]["response_rate"]) == (2, 1, 50.0)
    assert groups["vips"]["questions"][0]["nps"] == -100.0
    month = report(crm, key, by="month")["groups"]
    assert [g["group"] for g in month] == [dt.datetime.now(dt.UTC).strftime("%Y-%m")]
    rows = flat_rows(data)
    assert {r["group"] for r in rows} == {"(all)", "customers", "vips"}


EMPLOYEES = [("ann@corp.example", "sales"), ("bob@corp.example", "sales"),
             ("cy@corp.example", "sales"), ("di@corp.example", "ops"),
             ("ed@corp.example", "ops"), ("fo@corp.example", "ops"),
             ("gu@corp.example", "it")]


@pytest.fixture
def pulse(crm, publish, tmp_path):
    """The anonymous employee survey sent to five employees; returns their tokens."""
    key = publish(EMPLOYEE_DOC)
    path = tmp_path / "staff.json"
    path.write_text(json.dumps([{"name": e.split("@")[0], "email": e, "department": d,
                                 "role": "staff"} for e, d in EMPLOYEES]), encoding="utf-8")
    with crm.transaction() as tx:
        sent = invitations.send(tx, catalog.get(tx.session, key),
                                invitations.load_employees(path), Settings.of(crm))
    return [s.token for s in sent]


def test_anonymous_responses_link_to_nobody(crm, pulse, crmkit_recorder):
    with crm.transaction() as tx:
        response = respond(tx, pulse[0], {"enps": 3, "idea": "More coffee"})
    with crm.session() as session:
        stored = session.get(Response, response.id)
        assert stored.invitation_id is None and stored.customer_id is None
        assert stored.submitted_at.time() == dt.time()  # the day only
        assert stored.department == "sales"
    detractor = crmkit_recorder.event("surveys.detractor").payload
    assert detractor["customer_id"] is None and "email" not in detractor
    # one answer per person, even partial ones: nothing could join them up
    with pytest.raises(Conflict, match="already answered"), crm.transaction() as tx:
        respond(tx, pulse[0], {"enps": 9})


def test_small_groups_are_suppressed(crm, pulse):
    # sales 10, 9, 6; ops 3, 8, 9; it 10. All: promoters 4, detractors 2 of 7 -> 28.6
    with crm.transaction() as tx:
        for token, score in zip(pulse, [10, 9, 6, 3, 8, 9, 10], strict=True):
            respond(tx, token, {"enps": score, "idea": f"idea {score}"})
    data = report(crm, "pulse", by="department", min_group_size=3)
    assert data["suppressed"] is False and data["questions"][0]["nps"] == 28.6
    assert "response_id" not in data["free_text"][0]
    groups = {g["group"]: g for g in data["groups"]}
    assert groups["it"] == {"group": "it", "suppressed": True, "questions": [],
                            "free_text": []}
    # "it" alone would be the total minus the shown groups: the smallest other group
    # (ops, 3 responses; ties by name) is hidden with it
    assert groups["ops"]["suppressed"] is True
    assert groups["sales"]["responses"] == 3 and groups["sales"]["questions"][0]["nps"] == 33.3
    whole = report(crm, "pulse", min_group_size=8)
    assert whole["suppressed"] is True and "responses" not in whole


def test_no_second_group_is_hidden_when_the_hidden_ones_are_enough(crm, pulse):
    with crm.transaction() as tx:
        for token in pulse[:6]:
            respond(tx, token, {"enps": 9})
    groups = {g["group"]: g["suppressed"]
              for g in report(crm, "pulse", by="department", min_group_size=3)["groups"]}
    assert groups == {"it": True, "ops": False, "sales": False}  # it has no response


def test_a_named_survey_keeps_groups_of_one(crm, people, publish, invite):
    key = publish()
    [token] = invite(key, [people[0]])
    with crm.transaction() as tx:
        respond(tx, token, {"recommend": 9, "satisfied": 4})
    data = report(crm, key, by="segment", min_group_size=5)
    assert data["groups"][0]["suppressed"] is False


def test_employee_lists_are_checked(tmp_path):
    from crmkit import ValidationError

    path = tmp_path / "staff.csv"
    path.write_text("name,email,department,role\nAnn,ann@corp.example,sales,lead\n"
                    "Bob,bob,,staff\nAnn2,ANN@corp.example,sales,staff\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        invitations.load_employees(path)
    assert {str(i) for i in info.value.issues} == {
        "line 3.department: is required", "line 3.email: is not an e-mail address",
        "line 4.email: appears twice"}


def test_invitation_rows_of_anonymous_surveys_keep_no_answer(crm, pulse):
    with crm.transaction() as tx:
        respond(tx, pulse[1], {"enps": 10})
    with crm.session() as session:
        answered = session.execute(select(Invitation.email, Invitation.answered)
                                   .where(Invitation.answered.is_not(None))).all()
        assert answered == [("bob@corp.example", "complete")]
        assert "enps" not in str(answered)
