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

A rule never acts on an event its own action caused (the event's actor is ``rule:<name>``):
``on = "interaction.*"`` with ``log_interaction`` would otherwise feed itself forever. An
event naming a customer that does not exist is not acted on by rules that need one.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import case, exists, select
from sqlalchemy.exc import IntegrityError

from crmkit.criteria import Criteria, FieldRegistry
from crmkit.db import utcnow
from crmkit.errors import ConfigError, CrmkitError, Issue, NotFound, ValidationError
from crmkit.models import Customer, RuleExecution
from crmkit.schemas import compile_schema, issues_of

if TYPE_CHECKING:
    from crmkit.app import Crm
    from crmkit.events import Event
    from crmkit.uow import Transaction

__all__ = ["Action", "ActionContext", "AlreadyDone", "Rule", "RuleBook", "RuleVerdict"]

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
#: Dotted parts of a-z, 0-9, _ and * (``interaction.*``, ``*.created``); used with fullmatch.
_EVENT_PATTERN = re.compile(r"[a-z0-9_*]+(?:\.[a-z0-9_*]+)*")


class AlreadyDone(CrmkitError):
    """This rule already acted on this event (a redelivery); nothing was written again."""


@attrs.frozen
class Action:
    """Something a rule can do.

    :param name: what rules name in ``do``.
    :param run: ``run(context)``; raise to fail (the delivery is retried).
    :param schema: JSON Schema of the rule's ``with`` table, checked at start-up.
    :param needs_customer: the event must name a customer (``payload.customer_id``).
    :param check: ``check(params, crm)``, further start-up checks of a rule's ``with`` once
        it meets the schema (a workflow that exists, a kind that is registered): the
        problems, with paths relative to ``with``. ``crm`` is the deployment being started,
        or ``None`` when rules are loaded without one (only checks that need none apply).
    """

    name: str
    run: Callable[[ActionContext], None]
    schema: Mapping[str, Any] | None = None
    needs_customer: bool = True
    description: str = ""
    owner: str = "crmkit"
    check: Callable[[Mapping[str, Any], Crm | None], list[Issue]] | None = None


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
        Use it once per run of an action: a second one in the same run is a redelivery too.
        """
        try:
            with self.crm.transaction(actor=self.actor) as tx:
                if self._recorded(tx.session):
                    raise AlreadyDone(f"rule {self.rule.name!r} already acted on event "
                                      f"{self.event.id}")
                tx.session.add(RuleExecution(rule=self.rule.name, event_id=self.event.id,
                                             at=utcnow()))
                # Take the (rule, event) key before the action writes anything: a concurrent
                # delivery of the same event waits here, then fails on the key.
                tx.session.flush()
                yield tx
        except AlreadyDone:
            raise
        except CrmkitError as exc:
            # A unique key failed. It is a redelivery only if the (rule, event) pair is now
            # recorded (a concurrent delivery committed it); any other constraint that the
            # action's writes violate is the action's failure, and is retried.
            if isinstance(exc.__cause__, IntegrityError):
                with self.crm.session() as session:
                    if self._recorded(session):
                        raise AlreadyDone(f"rule {self.rule.name!r} already acted on event "
                                          f"{self.event.id} (concurrently)") from None
            raise

    def _recorded(self, session: Any) -> bool:
        return bool(session.scalar(select(exists().where(
            RuleExecution.rule == self.rule.name, RuleExecution.event_id == self.event.id))))


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
             source: str, *, crm: Crm | None = None) -> None:
        """Build the rules of the config's ``[[rules]]`` array; errors name the rule and key.

        ``crm``, the deployment being started, lets actions check their ``with`` against it
        (a workflow that is defined, an interaction kind that is registered). Nothing is
        added unless every rule is good.
        """
        seen: set[str] = set()
        loaded: list[Rule] = []
        for i, raw in enumerate(raw_rules):
            key = f"rules[{i}]"
            name = raw.get("name", "")

            def error(path: str, message: str, _key: str = key) -> ConfigError:
                return ConfigError(message, file=source, key=f"{_key}.{path}" if path else _key)

            def problems(part: str, issues: Sequence[Issue], _key: str = key) -> ConfigError:
                """One issue: its path is the key; several: the part is, each is listed."""
                paths = [f"{part}.{issue.path}" if issue.path else part for issue in issues]
                if len(issues) == 1:
                    return error(paths[0], issues[0].message)
                listed = "; ".join(f"{_key}.{path}: {issue.message}"
                                   for path, issue in zip(paths, issues, strict=True))
                return error(part, f"{len(issues)} problems: {listed}")

            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise error("name", "must be 1-100 characters of a-z, 0-9, _ . - (starting "
                            "with a letter or digit)")
            if name in seen:
                raise error("name", f"duplicate rule name {name!r}")
            seen.add(name)
            on = raw.get("on", "")
            if not isinstance(on, str) or len(on) > 100 or not _EVENT_PATTERN.fullmatch(on):
                raise error("on", "must be an event name such as interaction.logged "
                            f"(* matches any part), not {on!r}")
            action = self.actions.get(raw.get("do", ""))
            if action is None:
                raise error("do", f"unknown action {raw.get('do')!r}; known: "
                            f"{', '.join(sorted(self.actions))}")
            params = dict(raw.get("with", {}))
            if action.schema is not None:
                issues = issues_of(compile_schema(action.schema, f"action {action.name}"),
                                   params)
                if issues:
                    raise problems("with", issues)
            if action.check is not None:
                issues = action.check(params, crm)
                if issues:
                    raise problems("with", issues)
            where = None
            if "where" in raw:
                try:
                    where = fields.compile(raw["where"], context="where")
                except ValidationError as exc:
                    # Issue paths start with "where" (the compile context).
                    issues = [Issue(issue.path.removeprefix("where").lstrip("."),
                                    issue.message, issue.value) for issue in exc.issues]
                    raise problems("where", issues) from None
            loaded.append(Rule(name, on, action, params, where, raw.get("enabled", True)))
        self.rules.extend(loaded)

    def for_event(self, event_name: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.listens_to(event_name)]

    def get(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise NotFound(f"no rule named {name!r} (rules: "
                       f"{', '.join(r.name for r in self.rules) or 'none'})")

    # -- running --------------------------------------------------------------------------

    def judge(self, crm: Crm, rule: Rule, event: Event) -> RuleVerdict:
        """Whether ``rule`` acts on ``event``, and why; acts on nothing."""
        customer_id = _customer_of(event)
        if not rule.enabled:
            return RuleVerdict(rule.name, False, customer_id, False, "the rule is disabled")
        if not rule.listens_to(event.name):
            return RuleVerdict(rule.name, False, customer_id, False,
                               f"listens to {rule.on!r}, not {event.name!r}")
        if event.actor == rule.subscriber:
            # on = "interaction.*" with log_interaction would otherwise feed itself forever.
            return RuleVerdict(rule.name, True, customer_id, False,
                               "the event was caused by this rule, which never acts on its "
                               "own events")
        if rule.where is None and not rule.action.needs_customer:
            return RuleVerdict(rule.name, True, customer_id, True, "no conditions")
        if customer_id is None:
            return RuleVerdict(rule.name, True, None, False, "the event names no customer")
        columns: list[Any] = [Customer.id]
        if rule.where is not None:  # one query: is the customer there, does it match
            columns.append(case((rule.where.to_sql(), 1), else_=0))
        with crm.session() as session:
            found = session.execute(select(*columns).where(Customer.id == customer_id)).first()
        if found is None:
            return RuleVerdict(rule.name, True, customer_id, False,
                               f"customer {customer_id} does not exist")
        if rule.where is None:
            return RuleVerdict(rule.name, True, customer_id, True, "no conditions")
        matches = bool(found[1])
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
