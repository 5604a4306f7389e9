"""Automation rules: loading from config, running from the outbox, the kernel's actions.

Rules come from the config's ``[[rules]]`` (``crm_factory(config={"rules": [...]})``) and
run from the outbox dispatcher after commit, each as its own subscriber (``rule:<name>``).
"Time passes" by moving ``next_attempt_at`` back in the database, never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from crmkit import ConfigError, Crm, Event, PluginError, hookimpl
from crmkit.db import utcnow
from crmkit.errors import NotFound
from crmkit.events import DispatchResult
from crmkit.models import (
    CustomerTag,
    Interaction,
    OutboxEvent,
    RuleExecution,
    WorkflowInstance,
)
from crmkit.rules import ActionContext, RuleBook, RuleVerdict
from crmkit.testing import make_config

ONBOARDING: dict[str, Any] = {
    "subject": "customer",
    "initial": "new",
    "states": ["new", "contacted", "qualified", "active", "lost"],
    "final": ["active", "lost"],
    "transitions": [
        {"name": "contact", "from": "new", "to": "contacted"},
        {"name": "qualify", "from": "contacted", "to": "qualified",
         "guard": {"field": "customer.email", "op": "exists"}},
        {"name": "win", "from": "qualified", "to": "active"},
        {"name": "give_up", "from": ["new", "contacted"], "to": "lost"},
    ],
}
WORKFLOWS = {"onboarding": ONBOARDING}
#: Retries that the test drives: a long back-off (so nothing is due by itself), 3 attempts.
RETRYING = {"backoff_seconds": 60, "max_backoff_seconds": 600, "max_attempts": 3}


def rule(name: str, on: str, do: str, with_: Mapping[str, Any] | None = None,
         where: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"name": name, "on": on, "do": do, **extra}
    if with_ is not None:
        raw["with"] = dict(with_)
    if where is not None:
        raw["where"] = dict(where)
    return raw


def TAG(name: str = "tag-it", on: str = "customer.created", tag: str = "auto",
        **extra: Any) -> dict[str, Any]:
    return rule(name, on, "tag_customer", {"tag": tag}, **extra)


def outbox(crm: Crm, name: str | None = None) -> list[OutboxEvent]:
    with crm.session() as session:
        query = select(OutboxEvent).order_by(OutboxEvent.id)
        if name:
            query = query.where(OutboxEvent.name == name)
        return list(session.scalars(query))


def event_of(row: OutboxEvent) -> Event:
    return Event(id=row.id, name=row.name, payload=dict(row.payload), actor=row.actor,
                 created_at=row.created_at, attempt=max(row.attempts, 1))


def make_due(crm: Crm) -> None:
    with crm.session() as session, session.begin():
        session.execute(update(OutboxEvent).where(OutboxEvent.status == "pending")
                        .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))


def executions(crm: Crm) -> list[tuple[str, int]]:
    with crm.session() as session:
        return [(r.rule, r.event_id) for r in session.scalars(
            select(RuleExecution).order_by(RuleExecution.event_id, RuleExecution.rule))]


def tags(crm: Crm, customer_id: int) -> list[str]:
    with crm.session() as session:
        return sorted(session.scalars(select(CustomerTag.tag).where(
            CustomerTag.customer_id == customer_id)))


def summaries(crm: Crm, customer_id: int, kind: str | None = None) -> list[tuple[str, str]]:
    with crm.session() as session:
        query = select(Interaction).where(Interaction.customer_id == customer_id)
        if kind:
            query = query.where(Interaction.kind == kind)
        return [(i.summary, i.actor) for i in session.scalars(query.order_by(Interaction.id))]


def create(crm: Crm, name: str = "Acme", kind: str = "organization", **values: Any) -> int:
    with crm.transaction(actor="alice") as tx:
        return int(tx.customers.create(kind=kind, name=name, **values).id)


def log(crm: Crm, customer_id: int, kind: str = "note", summary: str = "hello") -> int:
    with crm.transaction(actor="alice") as tx:
        return int(tx.interactions.log(customer_id, channel="phone", kind=kind,
                                       summary=summary).id)


class Flaky:
    """A plugin with a ``flaky`` action (fails ``failures`` times, then tags the customer)
    and a ``handle_event`` that records what it saw."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.runs: list[tuple[int, str]] = []
        self.handled: list[tuple[int, str]] = []

    @hookimpl
    def register_actions(self, register: Any) -> None:
        register("flaky", self.run, schema={
            "type": "object", "additionalProperties": False,
            "properties": {"tag": {"type": "string"}}})

    def run(self, context: ActionContext) -> None:
        self.runs.append((context.event.id, context.rule.name))
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the flaky service is down")
        with context.transaction() as tx:
            customer = tx.customers.get(context.customer_id)
            tx.customers.update(customer, tags=[*customer.tags, context.params["tag"]])

    @hookimpl
    def handle_event(self, crm: Crm, event: Event) -> None:
        self.handled.append((event.id, event.name))


# -- loading rules from config -------------------------------------------------------------


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Any]:
    """Start a deployment from a config dict (no database needed: start-up checks)."""
    built: list[Crm] = []

    def start(config: Mapping[str, Any], plugins: Mapping[str, object] | None = None) -> Crm:
        crm = Crm(make_config(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path, config),
                  plugins=plugins or {}, discover_plugins=False)
        built.append(crm)
        return crm

    yield start
    for crm in built:
        crm.close()


def config_error(build: Any, rules: list[dict[str, Any]], **extra: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        build({"rules": rules, "workflows": WORKFLOWS, **extra})
    return caught.value


def test_rules_load_from_config(build: Any) -> None:
    crm = build({"workflows": WORKFLOWS, "rules": [
        rule("onboard", "customer.created", "start_workflow", {"workflow": "onboarding"},
             where={"field": "customer.status", "op": "eq", "value": "prospect"}),
        TAG("tag-all", on="interaction.*", enabled=False),
    ]})
    onboard, tag_all = crm.rules.rules
    assert (onboard.name, onboard.on, onboard.action.name, dict(onboard.params)) == (
        "onboard", "customer.created", "start_workflow", {"workflow": "onboarding"})
    assert onboard.where is not None and onboard.where.document["value"] == "prospect"
    assert onboard.subscriber == "rule:onboard"
    assert (tag_all.enabled, tag_all.where) == (False, None)
    assert crm.rules.get("tag-all") is tag_all
    with pytest.raises(NotFound, match=r"no rule named 'nope' \(rules: onboard, tag-all\)"):
        crm.rules.get("nope")
    assert sorted(crm.rules.actions) == [
        "fire_transition", "log_interaction", "start_workflow", "tag_customer", "webhook"]


def test_unknown_action_is_named_with_the_known_ones(build: Any) -> None:
    error = config_error(build, [TAG("ok"), rule("bad", "customer.created", "teleport")])
    assert error.key == "rules[1].do"
    assert str(error) == ("<defaults>: rules[1].do: unknown action 'teleport'; known: "
                          "fire_transition, log_interaction, start_workflow, tag_customer, "
                          "webhook")


WEBHOOK = {"url": "https://hooks.example.com/crm", "secret_env": "HOOK_SECRET"}


@pytest.mark.parametrize(("do", "with_", "key", "message"), [
    ("webhook", {**WEBHOOK, "url": "ftp://x"}, "rules[0].with.url",
     "'ftp://x' does not match the required pattern"),
    ("webhook", {**WEBHOOK, "url": "not a url"}, "rules[0].with.url", "does not match"),
    ("webhook", {**WEBHOOK, "url": "https://"}, "rules[0].with.url", "does not match"),
    ("webhook", {**WEBHOOK, "url": "https://exa mple.com/x"}, "rules[0].with.url",
     "does not match"),
    ("webhook", {**WEBHOOK, "url": "https://host:99999/x"}, "rules[0].with.url",
     "not an http(s) URL"),
    ("webhook", {"url": WEBHOOK["url"]}, "rules[0].with", "missing required field 'secret_env'"),
    ("webhook", {**WEBHOOK, "secret_env": "NOT-A-NAME"}, "rules[0].with.secret_env",
     "does not match"),
    ("webhook", {**WEBHOOK, "timeout_seconds": 0}, "rules[0].with.timeout_seconds",
     "must be > 0"),
    ("webhook", {**WEBHOOK, "headers": {"X-Team": 7}}, "rules[0].with.headers.X-Team",
     "must be of type string"),
    ("webhook", {**WEBHOOK, "headers": {"X-Team": "a\r\nX-Evil: 1"}},
     "rules[0].with.headers.X-Team", "does not match"),
    ("webhook", {**WEBHOOK, "headers": {"Bad Name": "x"}}, "rules[0].with.headers",
     "not a header name"),
    ("webhook", {**WEBHOOK, "headers": {"x-crmkit-signature": "sha256=0"}},
     "rules[0].with.headers", "set by crmkit"),
    ("log_interaction", {"kind": "note"}, "rules[0].with", "missing required field 'summary'"),
    ("log_interaction", {"kind": "note", "summary": "x", "sumary": "y"}, "rules[0].with",
     "unknown field 'sumary'"),
    ("log_interaction", {"kind": "note", "summary": "x", "direction": "up"},
     "rules[0].with.direction", "must be one of 'inbound', 'outbound'"),
    ("start_workflow", {}, "rules[0].with", "missing required field 'workflow'"),
    ("fire_transition", {"workflow": "onboarding"}, "rules[0].with",
     "missing required field 'transition'"),
    ("tag_customer", {"tag": "has space"}, "rules[0].with.tag", "does not match"),
    ("tag_customer", None, "rules[0].with", "missing required field 'tag'"),
])
def test_bad_with_is_refused_per_the_action_schema(
    build: Any, do: str, with_: dict[str, Any] | None, key: str, message: str
) -> None:
    error = config_error(build, [rule("r", "customer.created", do, with_)])
    assert error.key == key
    assert message in error.message
    assert str(error).startswith(f"<defaults>: {key}: ")


@pytest.mark.parametrize(("where", "key", "message"), [
    ({"field": "customer.countyr", "op": "eq", "value": "LV"}, "rules[0].where.field",
     "unknown field 'customer.countyr'; known: "),
    ({"all": [{"field": "customer.kind", "op": "eq", "value": "person"},
              {"field": "customer.name", "op": "lt", "value": "M"}]},
     "rules[0].where.all[1].op", "'lt' does not apply to customer.name (string)"),
    ({"field": "customer.created_at", "op": "within", "value": "90 days"},
     "rules[0].where.value", "is not a duration"),
    ({"field": "customer.kind", "op": "eq"}, "rules[0].where.value", "'eq' needs a value"),
])
def test_bad_where_is_refused_with_its_path(
    build: Any, where: dict[str, Any], key: str, message: str
) -> None:
    error = config_error(build, [TAG(where=where)])
    assert error.key == key
    assert message in error.message


def test_every_problem_of_a_where_is_listed(build: Any) -> None:
    error = config_error(build, [TAG(), TAG("second", where={"any": [
        {"field": "customer.nope", "op": "eq", "value": 1},
        {"field": "customer.kind", "op": "gt", "value": "a"}]})])
    assert error.key == "rules[1].where"
    assert "rules[1].where.any[0].field: unknown field 'customer.nope'" in error.message
    assert "rules[1].where.any[1].op: 'gt' does not apply" in error.message


def test_duplicate_rule_names_are_refused(build: Any) -> None:
    error = config_error(build, [TAG("same"), TAG("other"), TAG("same", tag="again")])
    assert (error.key, error.message) == ("rules[2].name", "duplicate rule name 'same'")


@pytest.mark.parametrize("name", ["", "Has Caps", "with space", "-leading", "x\n", "a" * 101])
def test_bad_rule_names_are_refused(build: Any, name: str) -> None:
    error = config_error(build, [TAG(name)])
    assert error.key == "rules[0].name"
    assert "1-100 characters" in error.message


@pytest.mark.parametrize("on", ["", "Customer.Created", "customer created", "customer..created",
                                ".created", "customer.", "customer.[ab]", "customer.?",
                                "interaction.*\n"])
def test_bad_on_patterns_are_refused(build: Any, on: str) -> None:
    error = config_error(build, [TAG(on=on)])
    assert error.key == "rules[0].on"
    assert "event name such as interaction.logged" in error.message


@pytest.mark.parametrize(("do", "with_", "key", "message"), [
    ("start_workflow", {"workflow": "onbaording"}, "rules[0].with.workflow",
     "no workflow named 'onbaording' (defined: onboarding)"),
    ("fire_transition", {"workflow": "onboarding", "transition": "kontact"},
     "rules[0].with.transition", "workflow 'onboarding' has no transition 'kontact'"),
    ("fire_transition", {"workflow": "nope", "transition": "x"}, "rules[0].with.workflow",
     "no workflow named 'nope'"),
    ("log_interaction", {"kind": "nope", "summary": "x"}, "rules[0].with.kind",
     "unknown interaction kind 'nope'"),
    ("log_interaction", {"kind": "note", "summary": "x", "channel": "pigeon"},
     "rules[0].with.channel", "unknown channel 'pigeon'"),
])
def test_with_naming_unknown_workflows_kinds_or_channels_is_refused(
    build: Any, do: str, with_: dict[str, Any], key: str, message: str
) -> None:
    """A typo in a workflow, transition, kind or channel stops the deployment at start-up
    (docs: "a typo stops crmkit with the rule and key named") instead of dead-lettering every
    event. The deployment passes itself to ``RuleBook.load`` for these checks."""
    crm = build({"workflows": WORKFLOWS})
    book = RuleBook()
    for action in crm.rules.actions.values():
        book.add_action(action)
    with pytest.raises(ConfigError) as caught:
        book.load([rule("r", "customer.created", do, with_)], crm.criteria_fields, "x.toml",
                  crm=crm)
    assert (caught.value.key, caught.value.file) == (key, "x.toml")
    assert message in caught.value.message
    # Without a deployment (as before), only the schema is checked.
    RuleBook().load([], crm.criteria_fields, "x.toml")


def test_a_plugin_action_with_a_schema_is_usable_by_rules(build: Any) -> None:
    crm = build({"rules": [rule("fl", "customer.created", "flaky", {"tag": "x"})]},
                plugins={"flaky": Flaky()})
    assert crm.rules.actions["flaky"].owner == "flaky"
    assert crm.rules.get("fl").action is crm.rules.actions["flaky"]
    with pytest.raises(ConfigError) as caught:
        build({"rules": [rule("fl", "customer.created", "flaky", {"tag": 7})]},
              plugins={"flaky": Flaky()})
    assert caught.value.key == "rules[0].with.tag"
    assert "must be of type string, got int 7" in caught.value.message


def test_a_plugin_action_may_not_take_a_kernel_name(build: Any) -> None:
    class Thief:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register("webhook", lambda context: None)

    with pytest.raises(PluginError, match="action already registered by crmkit") as caught:
        build({}, plugins={"thief": Thief()})
    assert (caught.value.plugin, caught.value.hook) == ("thief", "register_actions")


# -- running: inline, worker, matching -------------------------------------------------------


def test_rules_run_inline_after_commit(crm_factory: Any) -> None:
    seen: list[list[str]] = []

    class Watch:
        @hookimpl
        def customer_created(self, tx: Any, customer: Any) -> None:
            seen.append(list(customer.tags))  # inside the transaction: no rule ran yet

    crm = crm_factory(plugins={"watch": Watch()}, config={"rules": [TAG()]})
    customer_id = create(crm)
    assert seen == [[]]
    assert tags(crm, customer_id) == ["auto"]
    [created, updated] = outbox(crm)
    assert (created.name, created.status, created.delivered_to) == (
        "customer.created", "delivered", ["rule:tag-it"])
    assert (updated.name, updated.actor) == ("customer.updated", "rule:tag-it")
    assert executions(crm) == [("tag-it", created.id)]


def test_rules_run_from_the_worker(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [TAG()], "events": {"dispatch": "worker"}})
    customer_id = create(crm)
    assert tags(crm, customer_id) == []
    assert executions(crm) == []
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)
    assert tags(crm, customer_id) == ["auto"]
    assert crm.dispatcher.run_once() == DispatchResult(delivered=1)  # the tag's update event
    assert crm.dispatcher.run_once().claimed == 0
    assert tags(crm, customer_id) == ["auto"]


def test_on_globs_match_event_names(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [
        TAG("any-interaction", on="interaction.*", tag="talked"),
        TAG("any-created", on="*.created", tag="created"),
        TAG("exact", on="interaction.logged", tag="logged"),
        TAG("other", on="interaction.deleted", tag="never"),
    ]})
    customer_id = create(crm)
    assert tags(crm, customer_id) == ["created"]
    log(crm, customer_id)
    assert tags(crm, customer_id) == ["created", "logged", "talked"]
    rules = crm.rules
    assert [r.name for r in rules.for_event("interaction.logged")] == [
        "any-interaction", "exact"]
    assert [r.name for r in rules.for_event("customer.created")] == ["any-created"]
    assert rules.for_event("sales.won") == []


def test_where_is_evaluated_against_the_events_customer(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [
        TAG("orgs", tag="org", where={"field": "customer.kind", "op": "eq",
                                      "value": "organization"}),
        TAG("complainers", on="interaction.logged", tag="unhappy", where={
            "interactions": {"kind": "complaint", "within": "P30D"}, "op": "gte", "value": 2}),
    ]})
    org = create(crm, "Acme", "organization")
    person = create(crm, "Ann", "person")
    assert (tags(crm, org), tags(crm, person)) == (["org"], [])
    log(crm, person, "complaint")
    assert tags(crm, person) == []
    log(crm, person, "complaint")
    assert tags(crm, person) == ["unhappy"]
    assert {r for r, _ in executions(crm)} == {"orgs", "complainers"}
    assert all(row.status == "delivered" for row in outbox(crm))


def test_events_naming_no_customer(crm_factory: Any) -> None:
    calls: list[tuple[int | None, str]] = []

    class Ping:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register("ping", lambda c: calls.append((c.customer_id, c.event.name)),
                     needs_customer=False)

    crm = crm_factory(plugins={"ping": Ping()}, config={"rules": [
        TAG("needs-one", on="custom.*"),
        rule("pinger", "custom.*", "ping"),
        rule("picky-pinger", "custom.*", "ping",
             where={"field": "customer.kind", "op": "eq", "value": "person"}),
    ]})
    with crm.transaction(actor="system") as tx:
        event = tx.emit("custom.thing", {"x": 1})
    assert calls == [(None, "custom.thing")]
    [row] = outbox(crm)
    assert (row.status, row.last_error) == ("delivered", None)
    assert row.delivered_to == ["rule:needs-one", "rule:pinger", "rule:picky-pinger"]
    verdicts = {r.name: crm.rules.judge(crm, r, event_of(row)) for r in crm.rules.rules}
    assert verdicts["needs-one"] == RuleVerdict("needs-one", True, None, False,
                                                "the event names no customer")
    assert verdicts["pinger"].matches and verdicts["pinger"].reason == "no conditions"
    assert verdicts["picky-pinger"].matches is False
    assert event.id == row.id


def test_an_event_naming_a_missing_customer_is_not_acted_on(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [TAG(on="custom.*")]})
    with crm.transaction() as tx:
        tx.emit("custom.thing", {"customer_id": 424242})
    [row] = outbox(crm)
    assert (row.status, row.delivered_to) == ("delivered", ["rule:tag-it"])
    verdict = crm.rules.judge(crm, crm.rules.get("tag-it"), event_of(row))
    assert (verdict.matches, verdict.reason) == (False, "customer 424242 does not exist")


def test_disabled_rules_do_not_run_and_judge_says_why(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [TAG(enabled=False)]})
    customer_id = create(crm)
    assert tags(crm, customer_id) == []
    [row] = outbox(crm)
    assert row.delivered_to == []
    verdict = crm.rules.judge(crm, crm.rules.get("tag-it"), event_of(row))
    assert verdict == RuleVerdict("tag-it", False, customer_id, False, "the rule is disabled")


def test_judge_says_whether_and_why_without_acting(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [
        TAG("orgs", where={"field": "customer.kind", "op": "eq", "value": "organization"}),
    ], "events": {"dispatch": "worker"}})
    org, person = create(crm, "Acme", "organization"), create(crm, "Ann", "person")
    rows = outbox(crm)
    orgs = crm.rules.get("orgs")
    assert crm.rules.judge(crm, orgs, event_of(rows[0])) == RuleVerdict(
        "orgs", True, org, True, "the customer meets the conditions")
    assert crm.rules.judge(crm, orgs, event_of(rows[1])) == RuleVerdict(
        "orgs", True, person, False, "the customer does not meet the conditions")
    logged = log(crm, org)
    [interaction_row] = outbox(crm, "interaction.logged")
    assert logged == interaction_row.payload["interaction_id"]
    assert crm.rules.judge(crm, orgs, event_of(interaction_row)) == RuleVerdict(
        "orgs", False, org, False, "listens to 'customer.created', not 'interaction.logged'")
    # Judging acted on nothing: no tags, no executions, every event still pending.
    assert (tags(crm, org), executions(crm)) == ([], [])
    assert {row.status for row in outbox(crm)} == {"pending"}


# -- the kernel's actions ------------------------------------------------------------------


def test_log_interaction_fills_placeholders_from_the_payload(crm_factory: Any) -> None:
    crm = crm_factory(config={"workflows": WORKFLOWS, "rules": [
        rule("note", "workflow.transitioned", "log_interaction", {
            "kind": "note", "direction": "inbound",
            "summary": "Onboarding: ${transition} to ${to} (${event_name} #${event_id}); "
                       "$from ${missing} {customer_id.__class__} ${data} $$5"}),
    ]})
    customer_id = create(crm)
    with crm.transaction(actor="bob") as tx:
        instance = tx.workflows.start("onboarding", customer=customer_id)
    with crm.transaction(actor="bob") as tx:
        tx.workflows.fire(instance.id, "contact")
    [row] = outbox(crm, "workflow.transitioned")
    assert summaries(crm, customer_id) == [(
        f"Onboarding: contact to contacted (workflow.transitioned #{row.id}); "
        "new ${missing} {customer_id.__class__} ${data} $5", "rule:note")]
    with crm.session() as session:
        note = session.scalars(select(Interaction)).one()
    assert (note.channel, note.direction, note.kind) == ("system", "inbound", "note")
    assert note.payload == {"rule": "note", "event_id": row.id}


def test_start_workflow_starts_once(crm_factory: Any) -> None:
    crm = crm_factory(config={"workflows": WORKFLOWS, "rules": [
        rule("onboard", "customer.*", "start_workflow", {"workflow": "onboarding"},
             where={"field": "customer.status", "op": "eq", "value": "prospect"}),
    ]})
    prospect = create(crm, "Ann", "person", status="prospect")
    active = create(crm, "Bob", "person", status="active")
    with crm.transaction() as tx:  # customer.updated: the rule listens again
        tx.customers.update(prospect, name="Ann B.")
    with crm.session() as session:
        instances = list(session.scalars(select(WorkflowInstance)))
    assert [(i.customer_id, i.state) for i in instances] == [(prospect, "new")]
    with crm.transaction() as tx:
        [step] = tx.workflows.history(instances[0].id)
        assert (step.transition, step.actor) == ("start", "rule:onboard")
    assert {row.status for row in outbox(crm)} == {"delivered"}
    assert [r for r, _ in executions(crm)] == ["onboard", "onboard"]  # created and updated
    assert active not in [i.customer_id for i in instances]


def test_fire_transition_moves_the_customers_instance(crm_factory: Any) -> None:
    crm = crm_factory(config={"workflows": WORKFLOWS, "events": RETRYING, "rules": [
        rule("contacted", "interaction.logged", "fire_transition",
             {"workflow": "onboarding", "transition": "contact"},
             where={"interactions": {"kind": "inquiry"}, "op": "gte", "value": 1}),
    ]})
    customer_id = create(crm)
    log(crm, customer_id, "note")  # no meeting: no transition
    with crm.transaction() as tx:
        instance = tx.workflows.start("onboarding", customer=customer_id)
    log(crm, customer_id, "inquiry")
    with crm.transaction() as tx:
        steps = [(s.transition, s.to_state, s.actor, s.data)
                 for s in tx.workflows.history(instance.id)]
    assert steps == [("start", "new", "system", {}),
                     ("contact", "contacted", "rule:contacted", {"rule": "contacted"})]


def test_fire_transition_without_an_instance_fails_and_is_retried(crm_factory: Any) -> None:
    crm = crm_factory(config={"workflows": WORKFLOWS, "events": RETRYING, "rules": [
        rule("contacted", "interaction.logged", "fire_transition",
             {"workflow": "onboarding", "transition": "contact"}),
    ]})
    customer_id = create(crm)
    log(crm, customer_id)
    [row] = outbox(crm, "interaction.logged")
    assert (row.status, row.attempts, row.delivered_to) == ("pending", 1, [])
    assert row.last_error == (f"rule:contacted: customer {customer_id} has no 'onboarding' "
                              "workflow")
    assert executions(crm) == []  # the failed attempt recorded nothing


def test_tag_customer_adds_a_tag_once(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [TAG(on="interaction.logged", tag="vip")]})
    customer_id = create(crm, tags=["old"])
    log(crm, customer_id)
    log(crm, customer_id)
    assert tags(crm, customer_id) == ["old", "vip"]
    updates = outbox(crm, "customer.updated")
    assert len(updates) == 1  # the second time, the tag was there: nothing changed
    assert len(executions(crm)) == 2


def test_a_rule_never_acts_on_the_events_it_caused(crm_factory: Any) -> None:
    """``on = "interaction.*"`` with ``log_interaction`` would feed itself forever."""
    crm = crm_factory(config={"rules": [
        rule("echo", "interaction.*", "log_interaction", {"kind": "note", "summary": "echo"}),
    ]})
    customer_id = create(crm)
    log(crm, customer_id, summary="hello")
    assert summaries(crm, customer_id) == [("hello", "alice"), ("echo", "rule:echo")]
    rows = outbox(crm, "interaction.logged")
    assert [(r.actor, r.status) for r in rows] == [("alice", "delivered"),
                                                   ("rule:echo", "delivered")]
    verdict = crm.rules.judge(crm, crm.rules.get("echo"), event_of(rows[1]))
    assert (verdict.matches, verdict.reason) == (
        False, "the event was caused by this rule, which never acts on its own events")


# -- exactly once, retries, dead letters ---------------------------------------------------


def test_a_repeated_delivery_writes_once(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [
        rule("note", "customer.created", "log_interaction",
             {"kind": "note", "summary": "welcome ${customer_id}"})]})
    customer_id = create(crm)
    [row] = outbox(crm, "customer.created")
    note = crm.rules.get("note")
    crm.rules.run(crm, note, event_of(row))  # a redelivery: recorded, so nothing happens
    crm.rules.run(crm, note, event_of(row))
    assert summaries(crm, customer_id) == [(f"welcome {customer_id}", "rule:note")]
    assert executions(crm) == [("note", row.id)]


def test_a_delivery_whose_outcome_was_lost_is_not_acted_on_twice(crm_factory: Any) -> None:
    """The worker acted, then died before recording ``delivered_to``: the event is claimed
    again after its lease, and the rule's earlier write is found (RuleExecution)."""
    crm = crm_factory(config={"rules": [TAG(), rule(
        "note", "customer.created", "log_interaction", {"kind": "note", "summary": "hi"})]})
    customer_id = create(crm)
    [row] = outbox(crm, "customer.created")
    with crm.session() as session, session.begin():
        session.execute(update(OutboxEvent).where(OutboxEvent.id == row.id).values(
            status="pending", delivered_to=[], next_attempt_at=utcnow()))
    assert crm.dispatcher.run_once(ids=[row.id]) == DispatchResult(delivered=1)
    assert summaries(crm, customer_id) == [("hi", "rule:note")]
    assert tags(crm, customer_id) == ["auto"]
    assert executions(crm) == [("note", row.id), ("tag-it", row.id)]
    [again] = outbox(crm, "customer.created")
    assert again.delivered_to == ["rule:tag-it", "rule:note"]


def test_concurrent_deliveries_of_one_event_write_once(crm_factory: Any) -> None:
    barrier = threading.Barrier(2, timeout=10)

    class Slow:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register("slow_note", self.run)

        def run(self, context: ActionContext) -> None:
            barrier.wait()  # both deliveries are under way before either writes
            with context.transaction() as tx:
                tx.interactions.log(context.customer_id, channel="system", kind="note",
                                    summary="once")

    crm = crm_factory(plugins={"slow": Slow()}, config={
        "rules": [rule("slow", "customer.created", "slow_note")],
        "events": {"dispatch": "worker"}})
    customer_id = create(crm)
    [row] = outbox(crm)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            crm.rules.run(crm, crm.rules.get("slow"), event_of(row))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert summaries(crm, customer_id) == [("once", "rule:slow")]
    assert executions(crm) == [("slow", row.id)]


def test_a_constraint_violation_in_an_action_is_not_taken_for_a_redelivery(
    crm_factory: Any,
) -> None:
    class Clash:
        @hookimpl
        def register_actions(self, register: Any) -> None:
            register("clash", self.run)

        def run(self, context: ActionContext) -> None:
            with context.transaction() as tx:  # the tag is there already: a unique key
                tx.session.add(CustomerTag(customer_id=context.customer_id, tag="dup"))

    crm = crm_factory(plugins={"clash": Clash()}, config={
        "rules": [rule("clash", "customer.created", "clash")], "events": RETRYING})
    create(crm, tags=["dup"])
    [row] = outbox(crm)
    assert (row.status, row.delivered_to, row.attempts) == ("pending", [], 1)
    assert row.last_error is not None
    assert row.last_error.startswith("rule:clash: the change violates a database constraint")
    assert executions(crm) == []


def test_a_failing_action_is_retried_then_dead_and_others_are_not_rerun(
    crm_factory: Any,
) -> None:
    flaky = Flaky(failures=1000)
    crm = crm_factory(plugins={"flaky": flaky}, config={"events": RETRYING, "rules": [
        TAG("first"), rule("fl", "customer.created", "flaky", {"tag": "flaky"}),
        TAG("last", tag="last"),
    ]})
    customer_id = create(crm)
    [row] = outbox(crm, "customer.created")
    for attempt in (1, 2):
        [row] = outbox(crm, "customer.created")
        wait = (row.next_attempt_at - utcnow()).total_seconds()
        low = 60 * 2 ** (attempt - 1) / 2
        assert low - 5 <= wait <= 60 * 2 ** (attempt - 1), (attempt, wait)
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.delivered_to == ["flaky", "rule:first", "rule:last"]
        assert row.last_error == "rule:fl: RuntimeError('the flaky service is down')"
        assert crm.dispatcher.run_once(ids=[row.id]).claimed == 0  # not due yet
        make_due(crm)
        expected = DispatchResult(retrying=1) if attempt == 1 else DispatchResult(dead=1)
        assert crm.dispatcher.run_once(ids=[row.id]) == expected
    [row] = outbox(crm, "customer.created")
    assert (row.status, row.attempts) == ("dead", 3)
    assert flaky.runs == [(row.id, "fl")] * 3
    # The plugin and the rules that succeeded ran once; their writes happened once.
    assert [h for h in flaky.handled if h[0] == row.id] == [(row.id, "customer.created")]
    assert tags(crm, customer_id) == ["auto", "last"]
    assert executions(crm) == [("first", row.id), ("last", row.id)]

    # An operator fixes the service and retries the dead event: only the rule that failed.
    flaky.failures = 0
    assert crm.dispatcher.retry(all_dead=True) == 1
    assert crm.dispatcher.run_once(ids=[row.id]) == DispatchResult(delivered=1)
    [row] = outbox(crm, "customer.created")
    assert (row.status, row.last_error) == ("delivered", None)
    assert row.delivered_to == ["flaky", "rule:first", "rule:last", "rule:fl"]
    assert tags(crm, customer_id) == ["auto", "flaky", "last"]
    assert flaky.runs == [(row.id, "fl")] * 4
    assert [h for h in flaky.handled if h[0] == row.id] == [(row.id, "customer.created")]


def test_a_rule_execution_records_when(crm_factory: Any) -> None:
    crm = crm_factory(config={"rules": [TAG()]})
    before = utcnow()
    create(crm)
    with crm.session() as session:
        [execution] = session.scalars(select(RuleExecution))
        assert session.scalar(select(func.count()).select_from(RuleExecution)) == 1
    assert before - dt.timedelta(seconds=5) <= execution.at <= utcnow() + dt.timedelta(seconds=5)
