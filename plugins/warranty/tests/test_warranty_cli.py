"""``crmkit warranty`` through the real admin tool: tables, --json, CSV, clean errors."""

import csv
import io
import json

import pytest
from warranty_helpers import days_ago


@pytest.fixture
def setup(crmkit_cli, catalogue, tmp_path):
    products = tmp_path / "products.csv"
    products.write_text("sku,name,product_line,warranty_months,extended_months\n"
                        "WM-500,Washer 500,laundry,24,12\nDR-1,Dryer 1,laundry,12,\n")
    assert crmkit_cli.ok("warranty", "products", "import", str(products)).stdout.strip() == \
        "2 created, 0 updated, 0 unchanged"
    units = tmp_path / "units.csv"
    units.write_text("sku,serial,customer_id,purchase_date,batch,extended\n" + "".join(
        f"WM-500,S{i},{catalogue[0]},{days_ago(5).isoformat()},L7,\n" for i in range(4)))
    assert crmkit_cli.ok("warranty", "units", "import", str(units)).stdout.strip() == \
        "4 created, 0 unchanged"
    assert crmkit_cli.ok("warranty", "units", "import", str(units)).stdout.strip() == \
        "0 created, 4 unchanged"
    return catalogue


def as_json(crmkit_cli, *args):
    return json.loads(crmkit_cli.ok(*args, "--json").stdout)


def test_products(crmkit_cli, setup):
    data = as_json(crmkit_cli, "warranty", "products", "add", "TV-9", "--name", "TV 9",
                   "--line", "video", "--warranty-months", "36")
    assert data == {"sku": "TV-9", "name": "TV 9", "product_line": "video",
                    "warranty_months": 36, "extended_months": None}
    rows = as_json(crmkit_cli, "warranty", "products", "list")
    assert [r["sku"] for r in rows] == ["DR-1", "DW-200", "TV-9", "WM-100", "WM-500"]
    text = crmkit_cli.ok("warranty", "products", "list", "--csv").stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0] == {"sku": "DR-1", "name": "Dryer 1", "product_line": "laundry",
                         "warranty_months": "12", "extended_months": ""}


def test_units(crmkit_cli, setup):
    ann, bob, _ = setup
    data = as_json(crmkit_cli, "warranty", "units", "register", "WM-500", "X1", "--customer",
                   str(bob), "--purchased", days_ago(30).isoformat(), "--batch", "L8",
                   "--extended")
    assert data["serial"] == "X1" and data["extended_end"] is not None
    data = as_json(crmkit_cli, "warranty", "units", "transfer", "WM-500", "X1", "--to",
                   str(ann))
    assert [o["customer_id"] for o in data["owners"]] == [bob, ann]
    data = as_json(crmkit_cli, "warranty", "units", "show", "WM-500", "X1")
    assert data["entitlement_today"] == "in_warranty" and data["customer_id"] == ann
    assert "warranty_end" in crmkit_cli.ok("warranty", "units", "show", "WM-500", "X1").stdout


def test_a_claim_from_report_to_close(crmkit_cli, setup):
    data = as_json(crmkit_cli, "warranty", "claims", "open", "WM-500", "--serial", "S1",
                   "--defect", "leak", "--description", "Water on the floor",
                   "--channel", "phone")
    claim_id = str(data["id"])
    assert (data["state"], data["entitlement"]) == ("reported", "in_warranty")
    for step in ("triage", "replace"):
        crmkit_cli.ok("warranty", "claims", "move", claim_id, step, "--note", step)
    assert as_json(crmkit_cli, "warranty", "claims", "resolve", claim_id)["state"] == "resolved"
    assert as_json(crmkit_cli, "warranty", "claims", "move", claim_id, "close")["state"] == \
        "closed"
    shown = as_json(crmkit_cli, "warranty", "claims", "show", claim_id)
    assert [h["transition"] for h in shown["history"]] == [
        "start", "triage", "replace", "resolve", "close"]
    text = crmkit_cli.ok("warranty", "claims", "show", claim_id).stdout
    assert "TRANSITION" in text and "replace" in text
    rows = as_json(crmkit_cli, "warranty", "claims", "list", "--state", "closed")
    assert [r["id"] for r in rows] == [int(claim_id)]
    timeline = crmkit_cli.ok("interactions", "list", str(setup[0])).stdout
    assert f"Warranty claim #{claim_id}: close" in timeline


def test_reports(crmkit_cli, setup):
    crmkit_cli.ok("warranty", "claims", "open", "WM-500", "--serial", "S0", "--defect",
                  "noise", "--description", "Loud", "--channel", "email")
    rows = as_json(crmkit_cli, "warranty", "report", "defects", "--by", "batch")
    assert rows == [{"sku": "WM-500", "batch": "L7", "units": 4, "claims": 1,
                     "rate_percent": 25.0}]
    text = crmkit_cli.ok("warranty", "report", "defects").stdout
    assert text.splitlines()[0].split() == ["SKU", "NAME", "PRODUCT_LINE", "UNITS", "CLAIMS",
                                            "RATE_PERCENT"]
    csv_text = crmkit_cli.ok("warranty", "report", "defects", "--by", "code", "--csv").stdout
    assert csv_text.splitlines() == ["defect_code,description,claims,share_percent",
                                     "noise,Abnormal noise or vibration,1,100.0"]
    assert as_json(crmkit_cli, "warranty", "report", "sla")[0]["claims"] == 1
    assert "No resolved claims yet." in crmkit_cli.ok("warranty", "report", "resolution").stdout
    crmkit_cli.fails("warranty", "report", "defects", "--json", "--csv",
                     message="give --json or --csv, not both")


def test_user_errors_are_one_line_and_change_nothing(crmkit_cli, setup, tmp_path):
    ann = str(setup[0])
    future = "2999-01-01"
    crmkit_cli.fails("warranty", "units", "register", "WM-500", "S1", "--customer", ann,
                     "--purchased", days_ago(1).isoformat(),
                     message="serial 'S1' of product 'WM-500' is already registered")
    crmkit_cli.fails("warranty", "units", "register", "WM-500", "S9", "--customer", ann,
                     "--purchased", future, message="purchase_date: is in the future")
    crmkit_cli.fails("warranty", "claims", "open", "WM-500", "--serial", "NOPE", "--defect",
                     "leak", "--description", "x", "--channel", "phone",
                     message="no registered unit with serial 'NOPE'")
    crmkit_cli.fails("warranty", "claims", "open", "WM-500", "--serial", "S1", "--defect",
                     "smoke", "--description", "x", "--channel", "phone",
                     message="'smoke' is not in the defect catalogue")
    assert as_json(crmkit_cli, "warranty", "claims", "list") == []
    data = as_json(crmkit_cli, "warranty", "claims", "open", "WM-500", "--serial", "S1",
                   "--defect", "leak", "--description", "x", "--channel", "phone")
    crmkit_cli.fails("warranty", "claims", "move", str(data["id"]), "close",
                     message="'close' needs 'resolved'")
    crmkit_cli.fails("warranty", "claims", "reject", str(data["id"]),
                     message="Missing option '--reason'")
    assert as_json(crmkit_cli, "warranty", "claims", "show", str(data["id"]))["state"] == \
        "reported"
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,serial,customer_id,purchase_date\nWM-500,T1,1,2026-01-01\n"
                   f"WM-500,T2,{ann},{future}\n")
    crmkit_cli.fails("warranty", "units", "import", str(bad),
                     message="bad.csv:line 3: purchase_date: is in the future")
    crmkit_cli.fails("warranty", "units", "show", "WM-500", "T1",
                     message="no registered unit with serial 'T1'")
