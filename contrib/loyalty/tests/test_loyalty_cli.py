"""``crmkit loyalty show|top`` through the real admin tool."""

import json

import pytest


@pytest.fixture
def customers(crm):
    with crm.transaction() as tx:
        made = [tx.customers.create(kind="person", name=name) for name in ("Ann", "Bob", "Cy")]
        for customer, amount in zip(made, ("2500", "10", "700"), strict=True):
            tx.interactions.log(customer, channel="web", kind="purchase", summary="Order",
                                amount=amount, currency="EUR")
    return made


def test_show(crmkit_cli, customers):
    ann = customers[0]
    data = json.loads(crmkit_cli.ok("loyalty", "show", str(ann.id), "--json").stdout)
    assert data == {"customer_id": ann.id, "name": "Ann", "points": 2500, "tier": "gold"}
    text = crmkit_cli.ok("loyalty", "show", str(ann.id)).stdout
    assert "gold" in text and "2500" in text


def test_show_follows_the_configured_tiers(crmkit_cli, customers):
    crmkit_cli.config = {"plugin": {"loyalty": {"tiers": {"basic": 0, "elite": 3000}}}}
    data = json.loads(crmkit_cli.ok("loyalty", "show", str(customers[0].id), "--json").stdout)
    assert data["tier"] == "basic"


def test_top(crmkit_cli, customers):
    rows = json.loads(crmkit_cli.ok("loyalty", "top", "--limit", "2", "--json").stdout)
    assert [(r["customer_id"], r["points"], r["tier"]) for r in rows] == [
        (customers[0].id, 2500, "gold"), (customers[2].id, 700, "silver"),
    ]
    assert crmkit_cli.ok("loyalty", "top").stdout.splitlines()[0].split() == \
        ["CUSTOMER_ID", "POINTS", "TIER"]


def test_top_with_no_points_says_so(crmkit_cli):
    assert "No customer has points yet." in crmkit_cli.ok("loyalty", "top").stdout


def test_user_errors_are_one_line_not_a_traceback(crmkit_cli, customers):
    crmkit_cli.fails("loyalty", "show", "999999", message="no customer with id 999999")
    crmkit_cli.fails("loyalty", "top", "--limit", "0", message="0 is not in the range")
    crmkit_cli.fails("loyalty", "show", "ann", message="'ann' is not a valid integer")
