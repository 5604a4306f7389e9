"""Automation rules: "on event E, where criteria C, do action A with parameters P".

Integrators write rules in ``crmkit.toml``::

    [[rules]]
    name = "complaint-escalation"
    on = "interaction.logged"
    where = { interactions = { kind = "complaint", within = "P30D" }, op = "gte", value = 3 }
    do = "start_workflow"
    with = { workflow = "escalation" }

Actions are registered by plugins (``register_actions``); the kernel ships
``log_interaction``, ``start_workflow``, ``fire_transition``, ``tag_customer`` and
``webhook``. Rules run from the outbox dispatcher, each as its own subscriber of the event,
so a failing action is retried with back-off and then dead-lettered, never lost, and the
other rules are not run again. An action that writes does so through
:meth:`ActionContext.transaction`, which records the (rule, event) pair in the same
transaction: a retried delivery never writes twice.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from crmkit.criteria import Criteria, FieldRegistry
from crmkit.db import utcnow
from crmkit.errors import ConfigError, CrmkitError, Issue, ValidationError
from crmkit.models import Customer, RuleExecution
from crmkit.schemas import compile_schema, issues_of

if TYPE_CHECKING:
    from crmkit.app import Crm
    from crmkit.events import Event
    from crmkit.uow import Transaction

__all__ = ["Action", "ActionContext", "AlreadyDone", "Rule", "RuleBook", "RuleVerdict"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
_EVENT_PATTERN = re.compile(r"^[a-z0-9_.*]{1,100}$")


class AlreadyDone(CrmkitError):
    """This rule already acted on this event (a redelivery); nothing was written again."""


@attrs.frozen
class Action:
    """Something a rule can do.

    :param name: what rules name in ``do``.
    :param run: ``run(context)``; raise to fail (the delivery is retried).
    :param schema: JSON Schema of the rule's ``with`` table, checked at start-up.
    :param needs_customer: the event must name a customer (``payload.customer_id``).
    """

    name: str
    run: Callable[[ActionContext], None]
    schema: Mapping[str, Any] | None = None
    needs_customer: bool = True
    description: str = ""
    owner: str = "crmkit"


@attrs.frozen
class Rule:
    """One configured rule."""

    name: str
    on: str
    action: Action
    params: Mapping[str, Any]
    where: Criteria | None = None
    enabled: bool = True

    def listens_to(self, event_name: str) -> bool:
        return self.enabled and fnmatch.fnmatchcase(event_name, self.on)

    @property
    def subscriber(self) -> str:
        """The name the dispatcher tracks this rule's deliveries under."""
        return f"rule:{self.name}"


@attrs.frozen
class ActionContext:
    """What an action gets: the deployment, the event, the rule and its parameters."""

    crm: Crm
    event: Event
    rule: Rule
    params: Mapping[str, Any]
    customer_id: int | None

    @property
    def actor(self) -> str:
        return f"rule:{self.rule.name}"

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A unit of work that records this (rule, event): it commits at most once.

        A redelivery raises :class:`AlreadyDone`, which the dispatcher counts as success.
        """
        try:
            with self.crm.transaction(actor=self.actor) as tx:
                done = tx.session.scalar(select(exists().where(
                    RuleExecution.rule == self.rule.name,
                    RuleExecution.event_id == self.event.id)))
                if done:
                    raise AlreadyDone(f"rule {self.rule.name!r} already acted on event "
                                      f"{self.event.id}")
                tx.session.add(RuleExecution(rule=self.rule.name, event_id=self.event.id,
                                             at=utcnow()))
                yield tx
        except CrmkitError as exc:
            if isinstance(exc.__cause__, IntegrityError) or "rule_execution" in str(exc):
                raise AlreadyDone(str(exc)) from None
            raise


@attrs.frozen
class RuleVerdict:
    """What a rule would do with an event (``crmkit rules test``)."""

    rule: str
    listens: bool
    customer_id: int | None
    matches: bool
    reason: str


class RuleBook:
    """The deployment's rules and the actions they may use."""

    def __init__(self) -> None:
        self.actions: dict[str, Action] = {}
        self.rules: list[Rule] = []

    def add_action(self, action: Action) -> None:
        if action.name in self.actions:
            raise ValidationError([Issue(action.name, "action already registered by "
                                         f"{self.actions[action.name].owner}")],
                                  context=f"action from {action.owner}")
        self.actions[action.name] = action

    def load(self, raw_rules: Sequence[Mapping[str, Any]], fields: FieldRegistry,
             source: str) -> None:
        """Build the rules of the config's ``[[rules]]`` array; errors name the rule."""
        seen: set[str] = set()
        for i, raw in enumerate(raw_rules):
            key = f"rules[{i}]"
            name = raw.get("name", "")

            def error(path: str, message: str, _key: str = key) -> ConfigError:
                return ConfigError(message, file=source, key=f"{_key}.{path}" if path else _key)

            if not _NAME.match(name):
                raise error("name", "must be 1-100 characters of a-z, 0-9, _ . -")
            if name in seen:
                raise error("name", f"duplicate rule name {name!r}")
            seen.add(name)
            if not _EVENT_PATTERN.match(raw.get("on", "")):
                raise error("on", "must be an event name such as interaction.logged "
                            "(* matches any part)")
            action = self.actions.get(raw.get("do", ""))
            if action is None:
                raise error("do", f"unknown action {raw.get('do')!r}; known: "
                            f"{', '.join(sorted(self.actions))}")
            params = dict(raw.get("with", {}))
            if action.schema is not None:
                issues = issues_of(compile_schema(action.schema, f"action {action.name}"),
                                   params)
                if issues:
                    raise error(f"with.{issues[0].path}" if issues[0].path else "with",
                                issues[0].message)
            where = None
            if "where" in raw:
                try:
                    where = fields.compile(raw["where"], context="where")
                except ValidationError as exc:
                    raise error("", str(exc)) from None
            self.rules.append(Rule(name, raw["on"], action, params, where,
                                   raw.get("enabled", True)))

    def for_event(self, event_name: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.listens_to(event_name)]

    def get(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        from crmkit.errors import NotFound

        raise NotFound(f"no rule named {name!r} (rules: "
                       f"{', '.join(r.name for r in self.rules) or 'none'})")

    # -- running --------------------------------------------------------------------------

    def judge(self, crm: Crm, rule: Rule, event: Event) -> RuleVerdict:
        """Whether ``rule`` acts on ``event``, and why; acts on nothing."""
        customer_id = _customer_of(event)
        if not rule.listens_to(event.name):
            return RuleVerdict(rule.name, False, customer_id, False,
                               f"listens to {rule.on!r}, not {event.name!r}")
        if rule.where is None and not rule.action.needs_customer:
            return RuleVerdict(rule.name, True, customer_id, True, "no conditions")
        if customer_id is None:
            return RuleVerdict(rule.name, True, None, False, "the event names no customer")
        if rule.where is None:
            return RuleVerdict(rule.name, True, customer_id, True, "no conditions")
        with crm.session() as session:
            matches = bool(session.scalar(select(exists(select(Customer.id).where(
                Customer.id == customer_id, rule.where.to_sql())))))
        reason = "the customer meets the conditions" if matches \
            else "the customer does not meet the conditions"
        return RuleVerdict(rule.name, True, customer_id, matches, reason)

    def run(self, crm: Crm, rule: Rule, event: Event) -> None:
        """Deliver ``event`` to ``rule``: check its conditions, then act."""
        verdict = self.judge(crm, rule, event)
        if not verdict.matches:
            return
        context = ActionContext(crm, event, rule, rule.params, verdict.customer_id)
        try:
            rule.action.run(context)
        except AlreadyDone:
            return


def _customer_of(event: Event) -> int | None:
    value = event.payload.get("customer_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
