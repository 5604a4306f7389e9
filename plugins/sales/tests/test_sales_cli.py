"""``crmkit sales ...`` through the real admin tool: from a lead to a won deal."""

import csv
import io
import json

import pytest


@pytest.fixture
def acme_id(crmkit_cli):
    out = crmkit_cli.ok("customers", "add", "--kind", "organization", "--name", "Acme GmbH",
                        "--json").stdout
    return json.loads(out)["id"]


def as_json(crmkit_cli, *args):
    return json.loads(crmkit_cli.ok(*args, "--json").stdout)


def test_from_lead_to_won_deal_and_forecast(crmkit_cli):
    lead = as_json(crmkit_cli, "sales", "leads", "add", "--company", "Nordwerk AG",
                   "--contact-name", "Jana Novak", "--email", "jana@nordwerk.example",
                   "--source", "referral", "--campaign", "fair-2026", "--owner", "alice")
    shown = crmkit_cli.ok("sales", "leads", "show", str(lead["id"])).stdout
    assert "+30  source is referral" in shown and "+10  has a company" in shown
    crmkit_cli.ok("sales", "leads", "qualify", str(lead["id"]), "--reason", "budget approved")
    converted = as_json(crmkit_cli, "sales", "leads", "convert", str(lead["id"]),
                        "--amount", "24000", "--currency", "EUR", "--close-date", "2026-12-15")
    opp = str(converted["opportunity_id"])
    for stage in ("needs_analysis", "proposal"):
        assert f"-> {stage}" in crmkit_cli.ok("sales", "opps", "move", opp, stage).stdout
    forecast = as_json(crmkit_cli, "sales", "report", "forecast")
    assert forecast["rows"] == [{"period": "2026-12", "category": "best_case",
                                 "currency": "EUR", "count": 1, "amount": "24000.00",
                                 "weighted": "12000.00"}]
    crmkit_cli.fails("sales", "opps", "win", opp, message="Missing option '--reason'")
    crmkit_cli.ok("sales", "opps", "win", opp, "--reason", "best service offer")
    data = as_json(crmkit_cli, "sales", "opps", "show", opp)
    assert (data["status"], data["reason"]) == ("won", "best service offer")
    assert [h["to"] for h in data["history"]] == ["qualification", "needs_analysis",
                                                  "proposal", "won"]
    timeline = [i["summary"] for i in as_json(crmkit_cli, "interactions", "list",
                                              str(converted["customer_id"]))]
    assert timeline[0] == (f"Opportunity {opp} 'Nordwerk AG: first deal' won: "
                           "best service offer")
    assert "Lead 1 captured from referral (campaign fair-2026)" in timeline


def test_reports_as_table_json_and_csv(crmkit_cli, acme_id):
    crmkit_cli.ok("sales", "opps", "add", "--customer", str(acme_id), "--title", "Units",
                  "--close-date", "2026-12-01", "--currency", "EUR", "--owner", "bob",
                  "--line", "products:40:460.00:Control unit CU-4",
                  "--line", "services:1:1200:Installation")
    table = crmkit_cli.ok("sales", "report", "pipeline").stdout.splitlines()
    assert table[0].split() == ["STAGE", "OWNER", "COUNT", "CURRENCY", "AMOUNT",
                                "PROBABILITY", "WEIGHTED", "CATEGORY"]
    assert table[1].split() == ["qualification", "bob", "1", "EUR", "19600.00", "10",
                                "1960.00", "pipeline"]
    rows = list(csv.DictReader(io.StringIO(
        crmkit_cli.ok("sales", "report", "forecast", "--period", "quarter", "--csv").stdout)))
    assert rows == [{"period": "2026-Q4", "category": "pipeline", "currency": "EUR",
                     "count": "1", "amount": "19600.00", "weighted": "1960.00"}]
    assert as_json(crmkit_cli, "sales", "report", "win-rate")["rows"][-1]["owner"] == "(all)"
    assert "Nothing to report" in crmkit_cli.ok("sales", "report", "by-domain").stdout
    crmkit_cli.fails("sales", "report", "forecast", "--period", "week",
                     message="'week' is not one of")


def test_bad_input_is_one_line_and_changes_nothing(crmkit_cli, acme_id):
    base = ["sales", "opps", "add", "--customer", str(acme_id), "--title", "T"]
    crmkit_cli.fails(*base, "--amount", "-10", "--close-date", "2026-12-01",
                     message="amount: must not be negative")
    crmkit_cli.fails(*base, "--amount", "10", "--currency", "EURO", "--close-date",
                     "2026-12-01", message="'EURO' is not an ISO 4217 currency code")
    crmkit_cli.fails(*base, "--amount", "10", "--close-date", "soon",
                     message="close_date: 'soon' is not a date")
    crmkit_cli.fails(*base, "--line", "products:1", "--close-date", "2026-12-01",
                     message="expected DOMAIN:QUANTITY:UNIT_PRICE:ITEM")
    assert as_json(crmkit_cli, "sales", "opps", "list") == []
    opp = as_json(crmkit_cli, *base, "--amount", "10", "--close-date", "2026-12-01")["id"]
    crmkit_cli.fails("sales", "opps", "move", str(opp), "won", message="use 'win'")
    crmkit_cli.fails("sales", "opps", "move", str(opp), "proposal",
                     message="does not allow moving from 'qualification' to 'proposal'")
    crmkit_cli.fails("sales", "opps", "lose", str(opp), "--reason", "bad vibes",
                     message="'bad vibes' is not a lost reason")
    crmkit_cli.fails("sales", "opps", "win", str(opp), "--reason", " ",
                     message="winning an opportunity needs a reason")
    assert as_json(crmkit_cli, "sales", "opps", "show", str(opp))["stage"] == "qualification"
    crmkit_cli.fails("sales", "opps", "show", "999", message="no opportunity with id 999")


def test_converting_twice_through_the_cli(crmkit_cli):
    lead = as_json(crmkit_cli, "sales", "leads", "add", "--company", "Nordwerk AG",
                   "--source", "web")["id"]
    crmkit_cli.ok("sales", "leads", "convert", str(lead))
    crmkit_cli.fails("sales", "leads", "convert", str(lead), message="already converted")
    crmkit_cli.fails("sales", "leads", "add", "--company", "Nordwerk AG", "--source", "web",
                     message="customer")
    assert len(as_json(crmkit_cli, "customers", "list")["customers"]) == 1


def test_import_and_list_leads(crmkit_cli, tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("company,email,source\nNordwerk AG,info@nordwerk.example,fair\n"
                    "Broken,not-an-email,web\n", encoding="utf-8")
    crmkit_cli.fails("sales", "leads", "import", str(path), message="record 2: email")
    assert as_json(crmkit_cli, "sales", "leads", "list") == []
    out = crmkit_cli.ok("sales", "leads", "import", str(path), "--on-error", "skip").stdout
    assert "1 leads imported, 0 duplicates skipped, 1 rejected" in out
    rejects = json.loads((tmp_path / "leads.csv.rejects.json").read_text())
    assert rejects[0]["record"] == 2 and "e-mail" in rejects[0]["error"]
    rows = as_json(crmkit_cli, "sales", "leads", "list")
    assert [(r["company"], r["source"], r["score"]) for r in rows] == [
        ("Nordwerk AG", "fair", 10)]
    lead = str(rows[0]["id"])
    crmkit_cli.fails("sales", "leads", "disqualify", lead, message="Missing option '--reason'")
    crmkit_cli.ok("sales", "leads", "disqualify", lead, "--reason", "student project")
    assert as_json(crmkit_cli, "sales", "leads", "list", "--status", "disqualified")[0][
        "status_reason"] == "student project"


def test_tasks(crmkit_cli, acme_id):
    task = as_json(crmkit_cli, "sales", "tasks", "add", "--kind", "meeting", "--title",
                   "Workshop", "--due", "2020-05-01", "--owner", "alice", "--customer",
                   str(acme_id))
    overdue = as_json(crmkit_cli, "sales", "tasks", "list", "--overdue")
    assert [t["id"] for t in overdue] == [task["id"]]
    assert "done (interaction" in crmkit_cli.ok("sales", "tasks", "done", str(task["id"]),
                                                "--outcome", "agreed on scope").stdout
    assert "No follow-ups." in crmkit_cli.ok("sales", "tasks", "list").stdout
    crmkit_cli.fails("sales", "tasks", "add", "--title", "x", "--due", "2026-01-01",
                     message="exactly one lead, opportunity or customer")
