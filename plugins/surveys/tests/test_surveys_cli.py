"""``crmkit surveys ...`` through the real admin tool."""

import csv
import io
import json

import pytest
from surveys_samples import EXAMPLES


@pytest.fixture
def cli(crmkit_cli, people):
    """The admin tool with the example survey added and published."""
    crmkit_cli.ok("surveys", "add", str(EXAMPLES / "service-feedback.toml"))
    crmkit_cli.ok("surveys", "publish", "service-feedback")
    return crmkit_cli


def send(cli, *args):
    return json.loads(cli.ok("surveys", "send", "service-feedback", *args, "--json").stdout)


def test_add_list_show_publish(crmkit_cli):
    out = crmkit_cli.ok("surveys", "add", str(EXAMPLES / "service-feedback.toml")).stdout
    assert out.strip() == "Survey 'service-feedback' version 1: draft (9 questions)"
    assert "Published survey 'service-feedback' version 1" in \
        crmkit_cli.ok("surveys", "publish", "service-feedback").stdout
    rows = json.loads(crmkit_cli.ok("surveys", "list", "--json").stdout)
    assert [(r["key"], r["version"], r["status"]) for r in rows] == \
        [("service-feedback", 1, "published")]
    shown = crmkit_cli.ok("surveys", "show", "service-feedback").stdout
    assert "recommend" in shown and "show_if" in shown.lower()
    data = json.loads(crmkit_cli.ok("surveys", "show", "service-feedback", "--json").stdout)
    assert data["definition"]["pages"][0]["questions"][0]["type"] == "nps"
    crmkit_cli.fails("surveys", "publish", "service-feedback", message="has no draft")


def test_a_malformed_document_is_one_clear_error(crmkit_cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"key": "x", "title": "X", "pages": [{"questions": [
        {"id": "q", "type": "scale", "text": "?", "min": 3, "max": 1}]}]}), encoding="utf-8")
    result = crmkit_cli.fails("surveys", "add", str(bad),
                              message="pages[0].questions[0].max: must be greater than min")
    assert str(bad) in result.output
    assert "No surveys yet." in crmkit_cli.ok("surveys", "list").stdout


def test_send_respond_report(cli, people):
    sent = send(cli, "--customer", str(people[1]), "--customer", str(people[2]))
    assert [s["customer_id"] for s in sent] == people[1:3]
    token = sent[0]["token"]
    answers = json.dumps({"recommend": 2, "why_low": "late", "satisfaction": 2,
                          "effort": 3, "topics": ["repair"]})
    assert "Recorded response" in cli.ok("surveys", "respond", token, "--answers",
                                         answers).stdout
    cli.fails("surveys", "respond", token, "--answers", answers, message="already answered")
    cli.fails("surveys", "respond", sent[1]["token"], "--answers", '{"recommend": 11}',
              message="recommend: must be from 0 to 10, got 11")
    cli.fails("surveys", "respond", "x" * 43, "--answers", "{}",
              message="unknown survey token")
    cli.fails("surveys", "respond", sent[1]["token"], "--answers", "{oops",
              message="--answers: not valid JSON")
    data = json.loads(cli.ok("surveys", "report", "service-feedback", "--json").stdout)
    assert (data["invitations"], data["responses"], data["response_rate"]) == (2, 1, 50.0)
    assert data["questions"][0]["nps"] == -100.0
    text = cli.ok("surveys", "report", "service-feedback").stdout
    assert "response rate 50.0%" in text and "[why_low] late" in text
    table = cli.ok("surveys", "report", "service-feedback", "--by", "segment", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {r["group"] for r in rows} == {"(all)", "customers"}
    assert rows[0]["question"] == "recommend" and rows[0]["nps"] == "-100.0"


def test_send_by_criteria_dry_run_and_segment(cli, people, crmkit_cli):
    out = cli.ok("surveys", "send", "service-feedback", "--criteria",
                 '{"field": "customer.kind", "op": "eq", "value": "person"}',
                 "--dry-run").stdout
    assert out.startswith("Would invite 3 recipient(s)")
    assert json.loads(cli.ok("surveys", "list", "--json").stdout)[0]["invitations"] == 0
    cli.fails("surveys", "send", "service-feedback", "--criteria",
              '{"field": "customer.colour", "op": "eq", "value": "red"}',
              message="unknown field 'customer.colour'")
    cli.fails("surveys", "send", "service-feedback", message="exactly one of --segment")
    cli.fails("surveys", "send", "service-feedback", "--segment", "vips",
              message="no segment 'vips'")
    crmkit_cli.config = {"plugin": {"surveys": {"segments": {
        "vips": {"field": "customer.tags", "op": "contains", "value": "vip"}}}}}
    assert [s["customer_id"] for s in send(cli, "--segment", "vips")] == [people[3]]
    cli.fails("surveys", "send", "service-feedback", "--customer", "999999",
              message="no customer with id 999999")
    cli.fails("surveys", "send", "nope", "--customer", "1", message="no survey 'nope'")
    cli.fails("surveys", "send", "service-feedback", "--customer", "1", "--expires-after",
              "2 weeks", message="is not a duration")


def test_remind_and_import(cli, people, tmp_path):
    send(cli, "--customer", str(people[0]))
    out = cli.ok("surveys", "remind", "service-feedback").stdout
    assert out.startswith("Reminded 0 recipient(s)")  # too early
    export = tmp_path / "export.csv"
    export.write_text("id,customer_id,recommend,satisfaction\n"
                      f"x1,{people[1]},9,5\nx2,{people[2]},99,5\n", encoding="utf-8")
    cli.fails("surveys", "import-responses", "service-feedback", str(export),
              message="line 3.recommend: must be from 0 to 10, got 99")
    rejects = tmp_path / "rejects.csv"
    out = cli.ok("surveys", "import-responses", "service-feedback", str(export),
                 "--on-error", "skip", "--rejects", str(rejects)).output
    assert "Imported 1, skipped 0 already imported, rejected 1" in out
    assert "must be from 0 to 10" in rejects.read_text(encoding="utf-8")
    again = json.loads(cli.ok("surveys", "import-responses", "service-feedback", str(export),
                              "--on-error", "skip", "--json").stdout)
    assert (again["imported"], again["skipped"], again["rejected"]) == (0, 1, 1)


def test_employee_survey_through_the_cli(crmkit_cli, tmp_path):
    crmkit_cli.ok("surveys", "add", str(EXAMPLES / "pulse.json"))
    crmkit_cli.ok("surveys", "publish", "pulse")
    staff = tmp_path / "staff.csv"
    staff.write_text("name,email,department,role\n" + "".join(
        f"P{i},p{i}@corp.example,{['sales', 'ops', 'it'][i // 3]},staff\n"
        for i in range(7)),
        encoding="utf-8")
    crmkit_cli.fails("surveys", "send", "pulse", "--customer", "1", message="")
    sent = json.loads(crmkit_cli.ok("surveys", "send", "pulse", "--employees", str(staff),
                                    "--json").stdout)
    assert [s["email"] for s in sent] == [f"p{i}@corp.example" for i in range(7)]
    for s, score in zip(sent, [9, 10, 4, 8, 9, 9, 2], strict=True):
        crmkit_cli.ok("surveys", "respond", s["token"], "--answers",
                      json.dumps({"enps": score}))
    crmkit_cli.config = {"plugin": {"surveys": {"min_group_size": 3}}}
    data = json.loads(crmkit_cli.ok("surveys", "report", "pulse", "--by", "department",
                                    "--json").stdout)
    assert data["questions"][0]["nps"] == 28.6  # promoters 4, detractors 2 of 7
    groups = {g["group"]: g["suppressed"] for g in data["groups"]}
    assert groups == {"it": True, "ops": True, "sales": False}
    text = crmkit_cli.ok("surveys", "report", "pulse", "--by", "department").stdout
    assert "suppressed" in text
