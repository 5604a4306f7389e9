"""The kernel's automation actions: what rules can do without any plugin."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crmkit.errors import Issue, NotFound, ValidationError
from crmkit.rules import Action, ActionContext
from crmkit.webhooks import SCHEMA as WEBHOOK_SCHEMA
from crmkit.webhooks import check_params as check_webhook
from crmkit.webhooks import send_webhook

if TYPE_CHECKING:
    from crmkit.app import Crm

__all__ = ["KERNEL_ACTIONS"]


MAX_SUMMARY = 10000


def _template(text: str, context: ActionContext) -> str:
    """``${key}`` from the payload's top-level scalars, ``${event_name}``, ``${event_id}``.

    string.Template, not str.format: a rule cannot reach attributes of the event. Unknown
    placeholders and nested values stay as written; the result is cut to what a summary holds.
    """
    values: dict[str, Any] = {k: v for k, v in context.event.payload.items()
                              if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    values["event_name"], values["event_id"] = context.event.name, context.event.id
    return string.Template(text).safe_substitute(values)[:MAX_SUMMARY]


def _customer(context: ActionContext) -> int:
    if context.customer_id is None:
        raise ValidationError([Issue("payload.customer_id", "the event names no customer")],
                              context=f"rule {context.rule.name!r}, event {context.event.id}")
    return context.customer_id


def log_interaction(context: ActionContext) -> None:
    p = context.params
    with context.transaction() as tx:
        tx.interactions.log(
            _customer(context), channel=p.get("channel", "system"), kind=p["kind"],
            direction=p.get("direction", "outbound"), summary=_template(p["summary"], context),
            payload={"rule": context.rule.name, "event_id": context.event.id},
        )


def start_workflow(context: ActionContext) -> None:
    with context.transaction() as tx:
        if tx.workflows.find(context.params["workflow"], "customer", _customer(context)):
            return  # already running: starting is idempotent for a rule
        tx.workflows.start(context.params["workflow"], customer=_customer(context),
                           data={"rule": context.rule.name, "event_id": context.event.id})


def fire_transition(context: ActionContext) -> None:
    p = context.params
    with context.transaction() as tx:
        instance = tx.workflows.find(p["workflow"], "customer", _customer(context))
        if instance is None:
            raise NotFound(f"customer {context.customer_id} has no {p['workflow']!r} workflow")
        tx.workflows.fire(instance, p["transition"], data={"rule": context.rule.name})


def tag_customer(context: ActionContext) -> None:
    with context.transaction() as tx:
        customer = tx.customers.get(_customer(context))
        tag = context.params["tag"]
        if tag not in customer.tags:
            tx.customers.update(customer, tags=[*customer.tags, tag])


# -- start-up checks of a rule's `with` against the deployment ------------------------------


def check_log_interaction(params: Mapping[str, Any], crm: Crm | None) -> list[Issue]:
    if crm is None:
        return []
    issues = []
    kind, channel = params["kind"], params.get("channel", "system")
    if kind not in crm.schemas.kinds:
        issues.append(Issue("kind", f"unknown interaction kind {kind!r}; known: "
                            f"{', '.join(sorted(crm.schemas.kinds))}", kind))
    if channel not in crm.schemas.channels:
        issues.append(Issue("channel", f"unknown channel {channel!r}; known: "
                            f"{', '.join(sorted(crm.schemas.channels))}", channel))
    return issues


def _check_workflow(params: Mapping[str, Any], crm: Crm | None, transition: bool
                    ) -> list[Issue]:
    if crm is None:
        return []
    name = params["workflow"]
    try:
        definition = crm.workflows.get(name)
    except NotFound as exc:
        return [Issue("workflow", str(exc), name)]
    if definition.subject != "customer":
        return [Issue("workflow", f"workflow {name!r} is for {definition.subject} records; "
                      "rules run it on the event's customer", name)]
    if transition and definition.transition(params["transition"]) is None:
        known = ", ".join(t.name for t in definition.transitions)
        return [Issue("transition", f"workflow {name!r} has no transition "
                      f"{params['transition']!r}; it has: {known}", params["transition"])]
    return []


def check_start_workflow(params: Mapping[str, Any], crm: Crm | None) -> list[Issue]:
    return _check_workflow(params, crm, transition=False)


def check_fire_transition(params: Mapping[str, Any], crm: Crm | None) -> list[Issue]:
    return _check_workflow(params, crm, transition=True)


_NAME: dict[str, Any] = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,59}$"}

KERNEL_ACTIONS = [
    Action("log_interaction", log_interaction, {
        "type": "object", "additionalProperties": False, "required": ["kind", "summary"],
        "properties": {"kind": _NAME, "channel": _NAME,
                       "summary": {"type": "string", "minLength": 1, "maxLength": 10000},
                       "direction": {"enum": ["inbound", "outbound"]}},
    }, description="Log an interaction on the event's customer (summary: ${placeholders}).",
       check=check_log_interaction),
    Action("start_workflow", start_workflow, {
        "type": "object", "additionalProperties": False, "required": ["workflow"],
        "properties": {"workflow": _NAME},
    }, description="Start a workflow for the event's customer (once).",
       check=check_start_workflow),
    Action("fire_transition", fire_transition, {
        "type": "object", "additionalProperties": False, "required": ["workflow", "transition"],
        "properties": {"workflow": _NAME, "transition": _NAME},
    }, description="Fire a transition of the customer's instance of a workflow.",
       check=check_fire_transition),
    Action("tag_customer", tag_customer, {
        "type": "object", "additionalProperties": False, "required": ["tag"],
        "properties": {"tag": {"type": "string",
                               "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"}},
    }, description="Add a tag to the event's customer."),
    Action("webhook", send_webhook, WEBHOOK_SCHEMA, needs_customer=False,
           description="POST the event as signed JSON to a URL.", check=check_webhook),
]
