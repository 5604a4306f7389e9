"""``crmkit workflows`` and ``crmkit rules`` through the admin tool, on every backend."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import update
from workflow_samples import ONBOARDING

from crmkit.models import WorkflowTimer
from crmkit.testing.cli import CrmkitCli

RULES = [
    {"name": "onboard-prospects", "on": "customer.created",
     "where": {"field": "customer.status", "op": "eq", "value": "prospect"},
     "do": "start_workflow", "with": {"workflow": "onboarding"}},
    {"name": "note-organizations", "on": "workflow.transitioned",
     "where": {"field": "customer.kind", "op": "eq", "value": "organization"},
     "do": "log_interaction",
     "with": {"kind": "note", "summary": "Onboarding: ${transition} to ${to}"}},
]


@pytest.fixture
def cli(crmkit_cli: CrmkitCli) -> CrmkitCli:
    crmkit_cli.config = {"workflows": {"onboarding": ONBOARDING}, "rules": RULES}
    return crmkit_cli


def out(result: Any) -> Any:
    return json.loads(result.stdout)


def add_prospect(cli: CrmkitCli, kind: str = "person", email: str | None = None) -> int:
    args = ["customers", "add", "--kind", kind, "--name", "Peteris", "--status", "prospect",
            "--json"]
    if email:
        args += ["--email", email]
    return int(out(cli.ok(*args))["id"])


def test_a_rule_starts_the_workflow_and_the_cli_walks_it(cli: CrmkitCli) -> None:
    customer = add_prospect(cli)
    [instance] = out(cli.ok("workflows", "instances", "--customer", str(customer),
                            "--json"))["instances"]
    assert instance["workflow"] == "onboarding" and instance["state"] == "new"
    iid = str(instance["id"])

    step = out(cli.ok("workflows", "fire", iid, "contact", "--data", '{"note": "called"}',
                      "--json"))
    assert (step["from"], step["to"], step["data"]) == ("new", "contacted", {"note": "called"})
    cli.fails("workflows", "fire", iid, "qualify", message="the guard of 'qualify' is not met")
    cli.fails("workflows", "fire", iid, "win",
              message="in state 'contacted'; 'win' needs 'qualified'")
    cli.fails("workflows", "fire", iid, "teleport", message="has no transition 'teleport'")
    cli.fails("workflows", "fire", iid, "go_cold", "--version", "1", message="moved on")
    cli.ok("customers", "update", str(customer), "--email", "p@example.lv")
    cli.ok("workflows", "fire", iid, "qualify")

    history = out(cli.ok("workflows", "history", iid, "--json"))
    assert [(s["transition"], s["from"], s["to"]) for s in history["steps"]] == [
        ("start", None, "new"), ("contact", "new", "contacted"),
        ("qualify", "contacted", "qualified"),
    ]
    assert history["steps"][0]["actor"] == "rule:onboard-prospects"
    assert history["instance"]["state"] == "qualified"
    assert "qualify" in cli.ok("workflows", "history", iid).output


def test_list_and_show_definitions(cli: CrmkitCli) -> None:
    add_prospect(cli)
    [row] = out(cli.ok("workflows", "list", "--json"))
    assert row["name"] == "onboarding" and row["states"] == 5 and row["transitions"] == 4
    shown = out(cli.ok("workflows", "show", "onboarding", "--json"))
    assert shown["instances"] == {"new": 1, "contacted": 0, "qualified": 0, "active": 0,
                                  "lost": 0}
    assert "go_cold" in cli.ok("workflows", "show", "onboarding").output
    cli.fails("workflows", "show", "nope", message="no workflow named 'nope'")


def test_start_by_hand_and_refuse_twice(cli: CrmkitCli) -> None:
    customer = out(cli.ok("customers", "add", "--kind", "person", "--name", "A",
                          "--json"))["id"]
    started = out(cli.ok("workflows", "start", "onboarding", str(customer), "--json"))
    assert started["state"] == "new"
    cli.fails("workflows", "start", "onboarding", str(customer), message="already running")
    cli.fails("workflows", "start", "onboarding", "999", message="no customer with id 999")


def test_timers_listed_and_fired_when_due(cli: CrmkitCli, crm_factory: Any) -> None:
    customer = add_prospect(cli)
    [timer] = out(cli.ok("workflows", "timers", "--json"))
    assert timer["transition"] == "go_cold" and timer["status"] == "pending"
    crm = crm_factory(config=cli.config)
    with crm.transaction() as tx:  # as if 30 days had passed
        tx.session.execute(update(WorkflowTimer).values(
            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    result = cli.ok("workflows", "timers", "--fire-due", "--status", "fired", "--json")
    assert "Timers fired 1, failed 0." in result.output
    assert [t["transition"] for t in out(result)] == ["go_cold"]
    [instance] = out(cli.ok("workflows", "instances", "--customer", str(customer),
                            "--json"))["instances"]
    assert instance["state"] == "lost" and instance["closed_at"] is not None
    steps = out(cli.ok("workflows", "history", str(instance["id"]), "--json"))["steps"]
    assert steps[-1]["actor"] == "timer"


def test_rules_list_and_test(cli: CrmkitCli) -> None:
    listed = out(cli.ok("rules", "list", "--json"))
    assert [r["name"] for r in listed["rules"]] == ["onboard-prospects", "note-organizations"]
    assert {"log_interaction", "start_workflow", "fire_transition", "tag_customer",
            "webhook"} <= {a["name"] for a in listed["actions"]}
    add_prospect(cli)
    events = out(cli.ok("events", "list", "--json"))
    created = next(e for e in events if e["name"] == "customer.created")
    verdict = out(cli.ok("rules", "test", "onboard-prospects", str(created["id"]), "--json"))
    assert verdict["matches"] is True and verdict["customer_id"] == created["payload"][
        "customer_id"]
    other = out(cli.ok("rules", "test", "note-organizations", str(created["id"]), "--json"))
    assert other["listens"] is False and other["matches"] is False
    assert "Would act: no" in cli.ok("rules", "test", "note-organizations",
                                     str(created["id"])).output
    cli.fails("rules", "test", "nope", str(created["id"]), message="no rule named 'nope'")
    cli.fails("rules", "test", "onboard-prospects", "424242", message="no event with id")


def test_a_bad_rule_stops_the_tool_with_its_key(cli: CrmkitCli) -> None:
    cli.config = {"rules": [{"name": "x", "on": "customer.created", "do": "teleport"}]}
    cli.fails("customers", "list", message="rules[0].do")
    cli.config = {"workflows": {"w": {"initial": "a", "states": ["a", "b"],
                                      "transitions": [{"name": "t", "from": "a", "to": "c"}]}}}
    cli.fails("workflows", "list", message="to unknown state 'c'")
