"""``crmkit campaigns`` through the real admin tool: a campaign from segment to ROI."""

import json

BUYERS = json.dumps({"all": [
    {"field": "customer.kind", "op": "eq", "value": "organization"},
    {"interactions": {"kind": "purchase", "within": "P90D"}, "op": "gte", "value": 1},
]})


def test_a_campaign_from_segment_to_roi(crmkit_cli, people, tmp_path):
    cli = crmkit_cli
    cli.ok("campaigns", "segments", "add", "buyers", "--criteria", BUYERS)
    criteria = tmp_path / "news.json"
    criteria.write_text('{"field": "customer.tags", "op": "contains", "value": "newsletter"}')
    cli.ok("campaigns", "segments", "add", "news", "--criteria", f"@{criteria}")
    preview = json.loads(cli.ok("campaigns", "segments", "preview", "news", "--json").stdout)
    assert preview["count"] == 3 and len(preview["sample"]) == 3
    assert "3 customers" in cli.ok("campaigns", "segments", "preview", "news").stdout
    assert "Froze segment 'news': 3" in cli.ok("campaigns", "segments", "freeze", "news").stdout
    listed = json.loads(cli.ok("campaigns", "segments", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["buyers", "news"]

    cli.ok("campaigns", "add", "XMAS", "--name", "Christmas", "--channel", "email",
           "--segment", "buyers", "--segment", "news", "--budget", "1000",
           "--offer-kind", "price", "--offer-value", "19.99", "--offer-code", "XMAS19")
    cli.ok("campaigns", "optout", str(people[2].id), "--channel", "email")
    shown = json.loads(cli.ok("campaigns", "show", "XMAS", "--json").stdout)
    assert shown["state"] == "draft" and shown["segments"] == ["buyers", "news"]
    assert shown["offer"] == {"kind": "price", "value": "19.99", "code": "XMAS19"}
    result = json.loads(cli.ok("campaigns", "launch", "XMAS", "--json").stdout)
    # buyers: 0; news: 0, 2, 4; 2 opted out of e-mail
    assert (result["added"], result["sent"]) == (2, 2)
    assert "0 new members" in cli.ok("campaigns", "launch", "XMAS").stdout
    assert "running" in cli.ok("campaigns", "list").stdout

    cli.ok("campaigns", "respond", "XMAS", str(people[0].id), "converted", "--revenue", "600")
    responses = tmp_path / "responses.csv"
    responses.write_text(f"customer_id,status\n{people[4].id},responded\n")
    assert "Imported 1" in cli.ok("campaigns", "import-responses", "XMAS",
                                  str(responses)).stdout
    cli.ok("campaigns", "cost", "XMAS", "200")
    cli.ok("campaigns", "complete", "XMAS")
    data = json.loads(cli.ok("campaigns", "report", "XMAS", "--json").stdout)
    assert data["total"]["roi"] == "2.0000" and data["total"]["responded"] == 2
    table = cli.ok("campaigns", "report", "XMAS").stdout
    assert "VARIANT" in table and "2.0000" in table
    lines = cli.ok("campaigns", "report", "XMAS", "--csv").stdout.splitlines()
    assert lines[0].startswith("campaign,variant,members") and lines[1].startswith("XMAS,all")
    members = json.loads(cli.ok("campaigns", "members", "XMAS", "--json").stdout)
    assert {m["status"] for m in members} == {"converted", "responded"}


def test_user_errors_are_one_line_not_a_traceback(crmkit_cli, people, everyone, tmp_path):
    cli = crmkit_cli
    cli.fails("campaigns", "segments", "add", "x", "--criteria",
              '{"field": "customer.countyr", "op": "eq", "value": "LV"}',
              message="unknown field 'customer.countyr'")
    cli.fails("campaigns", "segments", "add", "x", "--criteria", "{", message="not valid JSON")
    cli.fails("campaigns", "segments", "preview", "nope", message="no segment 'nope'")
    cli.fails("campaigns", "add", "C", "--name", "C", "--channel", "email", "--segment",
              everyone, "--currency", "EUX", message="'EUX' is not an ISO 4217 currency")
    cli.fails("campaigns", "add", "C", "--name", "C", "--channel", "email", "--segment",
              everyone, "--offer-starts", "2026-12-31", "--offer-ends", "2026-12-01",
              message="before it starts")
    cli.ok("campaigns", "add", "C", "--name", "C", "--channel", "email", "--segment", everyone)
    cli.fails("campaigns", "add", "C", "--name", "C", "--channel", "email", "--segment",
              everyone, message="already exists")
    cli.fails("campaigns", "respond", "C", str(people[0].id), "opened",
              message="not a member of campaign 'C'")
    cli.ok("campaigns", "launch", "C")
    cli.ok("campaigns", "complete", "C")
    cli.fails("campaigns", "launch", "C", message="is completed; it cannot be launched")
    cli.fails("campaigns", "cancel", "C", message="is completed")
    cli.fails("campaigns", "show", "NOPE", message="no campaign 'NOPE'")
    cli.fails("campaigns", "import-responses", "C", str(tmp_path / "missing.csv"),
              message="cannot read")
    cli.fails("campaigns", "optout", "999999", message="no customer with id 999999")
    cli.fails("campaigns", "optout", str(people[0].id), "--channel", "pigeon",
              message="unknown channel 'pigeon'")


def test_suppression_list_import(crmkit_cli, people, everyone, tmp_path):
    listing = tmp_path / "suppress.csv"
    listing.write_text(f"customer_id,email\n{people[0].id},\n,c1@example.com\n")
    assert "Added 2" in crmkit_cli.ok("campaigns", "suppress", str(listing)).stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id\n999999\n")
    crmkit_cli.fails("campaigns", "suppress", str(bad), message="line 2: customer_id")
    crmkit_cli.ok("campaigns", "add", "S", "--name", "S", "--channel", "email", "--segment",
                  everyone)
    result = json.loads(crmkit_cli.ok("campaigns", "launch", "S", "--json").stdout)
    assert result["added"] == 4


def test_lifecycle_commands(crmkit_cli, people, everyone):
    cli = crmkit_cli
    cli.ok("campaigns", "add", "L", "--name", "L", "--channel", "sms", "--segment", everyone)
    assert "scheduled" in cli.ok("campaigns", "schedule", "L").stdout
    assert json.loads(cli.ok("campaigns", "list", "--state", "scheduled", "--json").stdout)[0][
        "code"] == "L"
    assert "cancelled" in cli.ok("campaigns", "cancel", "L").stdout
    cli.fails("campaigns", "launch", "L", message="is cancelled; it cannot be launched")
    assert "No campaigns yet." in cli.ok("campaigns", "list", "--state", "running").stdout


def test_campaigns_and_segments_are_found_by_code_or_id(crmkit_cli, people, everyone):
    cli = crmkit_cli
    cli.ok("campaigns", "add", "2026", "--name", "Year", "--channel", "email", "--segment",
           everyone)
    by_code = json.loads(cli.ok("campaigns", "show", "2026", "--json").stdout)
    assert json.loads(cli.ok("campaigns", "show", str(by_code["id"]), "--json").stdout) == \
        by_code
    segment = json.loads(cli.ok("campaigns", "segments", "list", "--json").stdout)[0]
    preview = json.loads(cli.ok("campaigns", "segments", "preview", str(segment["id"]),
                                "--json").stdout)
    assert preview["segment"] == everyone


def test_import_responses_can_skip_bad_lines_into_a_reject_file(crmkit_cli, people, everyone,
                                                                tmp_path):
    cli = crmkit_cli
    cli.ok("campaigns", "add", "R", "--name", "R", "--channel", "email", "--segment", everyone)
    cli.ok("campaigns", "launch", "R")
    data = tmp_path / "r.csv"
    data.write_text(f"customer_id,status,revenue,ref\n{people[0].id},converted,10,o-1\n"
                    f"{people[1].id},clicked,,\n999999,opened,,\n")
    cli.fails("campaigns", "import-responses", "R", str(data), message="line 3: status")
    result = cli.ok("campaigns", "import-responses", "R", str(data), "--on-error", "skip")
    assert "Imported 1" in result.stdout
    rejects = (tmp_path / "r.csv.rejects.csv").read_text().splitlines()
    assert rejects[0] == "line,customer_id,status,at,revenue,ref,error"
    assert rejects[1].startswith("3,") and "must be one of" in rejects[1]
    assert rejects[2].startswith("4,999999") and "not a member" in rejects[2]
    # the same file again: the conversion with its ref is not counted twice
    cli.ok("campaigns", "import-responses", "R", str(data), "--on-error", "skip")
    report = json.loads(cli.ok("campaigns", "report", "R", "--json").stdout)
    assert report["total"]["revenue"] == "10.00"
