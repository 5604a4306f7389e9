"""The kernel's automation actions: what rules can do without any plugin."""

from __future__ import annotations

import string
from typing import Any

from crmkit.errors import Issue, NotFound, ValidationError
from crmkit.rules import Action, ActionContext
from crmkit.webhooks import SCHEMA as WEBHOOK_SCHEMA
from crmkit.webhooks import send_webhook

__all__ = ["KERNEL_ACTIONS"]


def _template(text: str, context: ActionContext) -> str:
    # string.Template, not str.format: a rule cannot reach attributes of the event.
    values = {k: v for k, v in context.event.payload.items() if isinstance(v, (str, int))}
    values["event_name"], values["event_id"] = context.event.name, context.event.id
    return string.Template(text).safe_substitute(values)


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


_NAME: dict[str, Any] = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,59}$"}

KERNEL_ACTIONS = [
    Action("log_interaction", log_interaction, {
        "type": "object", "additionalProperties": False, "required": ["kind", "summary"],
        "properties": {"kind": _NAME, "channel": _NAME, "summary": {"type": "string"},
                       "direction": {"enum": ["inbound", "outbound"]}},
    }, description="Log an interaction on the event's customer (summary: $placeholders)."),
    Action("start_workflow", start_workflow, {
        "type": "object", "additionalProperties": False, "required": ["workflow"],
        "properties": {"workflow": _NAME},
    }, description="Start a workflow for the event's customer (once)."),
    Action("fire_transition", fire_transition, {
        "type": "object", "additionalProperties": False, "required": ["workflow", "transition"],
        "properties": {"workflow": _NAME, "transition": _NAME},
    }, description="Fire a transition of the customer's instance of a workflow."),
    Action("tag_customer", tag_customer, {
        "type": "object", "additionalProperties": False, "required": ["tag"],
        "properties": {"tag": {"type": "string",
                               "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$"}},
    }, description="Add a tag to the event's customer."),
    Action("webhook", send_webhook, WEBHOOK_SCHEMA, needs_customer=False,
           description="POST the event as signed JSON to a URL."),
]
