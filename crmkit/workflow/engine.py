"""Workflow instances: start, fire transitions, keep history, arm and fire timers.

An instance attaches to a subject (a customer, or a plugin's record named by type and id)
and optionally to the customer it belongs to, whose data guards are evaluated against. Every
transition runs inside the caller's unit of work: the guard (criteria, evaluated in SQL),
``before_transition`` (a plugin may veto with :class:`~crmkit.errors.Rejected`), the state
change, a history step, timers re-armed, an audit entry, an outbox event and
``workflow_transitioned`` commit together. Instances carry a version: of two concurrent
transitions of the same instance one wins and the other raises
:class:`~crmkit.errors.Conflict`, so the history never shows an impossible path.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import exists, select, update
from sqlalchemy.orm.exc import StaleDataError

from crmkit.db import utcnow
from crmkit.errors import (
    Conflict,
    CrmkitError,
    Issue,
    NotFound,
    Rejected,
    ValidationError,
    short_repr,
)
from crmkit.models import Customer, WorkflowInstance, WorkflowStep, WorkflowTimer
from crmkit.workflow.definition import Transition, WorkflowDefinition

if TYPE_CHECKING:
    from crmkit.app import Crm
    from crmkit.uow import Page, Transaction

__all__ = ["TIMER_ACTOR", "TimerResult", "WorkflowRepository", "fire_due_timers"]

#: The actor of transitions that timers fire (``tx.actor`` in hooks, history, audit, events).
TIMER_ACTOR = "timer"
#: How many due timers one claim looks at: enough to step past those other workers hold.
CLAIM_BATCH = 50


@attrs.define
class TimerResult:
    """What one pass over due timers did."""

    fired: int = 0
    failed: int = 0


class WorkflowRepository:
    """Workflow instances inside a transaction (``tx.workflows``)."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.session = tx.session

    @property
    def definitions(self) -> Any:
        return self.tx.crm.workflows

    # -- reading --------------------------------------------------------------------------

    def get(self, instance_id: int) -> WorkflowInstance:
        """The instance with ``instance_id``; :class:`NotFound` if there is none."""
        if isinstance(instance_id, bool) or not isinstance(instance_id, int) or instance_id < 1:
            raise ValidationError([Issue("id", "must be a positive integer, got "
                                         f"{short_repr(instance_id)}", instance_id)])
        instance = self.session.get(WorkflowInstance, instance_id)
        if instance is None:
            raise NotFound(f"no workflow instance with id {instance_id}")
        return instance

    def find(self, workflow: str, subject_type: str, subject_id: Any) -> WorkflowInstance | None:
        """The instance of ``workflow`` for a subject, if one was started."""
        return self.session.scalars(select(WorkflowInstance).where(
            WorkflowInstance.workflow == workflow,
            WorkflowInstance.subject_type == subject_type,
            WorkflowInstance.subject_id == str(subject_id),
        )).first()

    def list(self, *, workflow: str | None = None, state: str | None = None,
             customer_id: int | None = None, limit: int = 50, after: int | None = None
             ) -> Page:
        from crmkit.uow import MAX_PAGE, Page

        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise ValidationError([Issue("limit", f"must be between 1 and {MAX_PAGE}", limit)])
        query = select(WorkflowInstance).order_by(WorkflowInstance.id).limit(limit + 1)
        if workflow:
            query = query.where(WorkflowInstance.workflow == workflow)
        if state:
            query = query.where(WorkflowInstance.state == state)
        if customer_id is not None:
            query = query.where(WorkflowInstance.customer_id == customer_id)
        if after is not None:
            query = query.where(WorkflowInstance.id > after)
        rows = list(self.session.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    def history(self, instance: WorkflowInstance | int) -> builtins.list[WorkflowStep]:
        """Every step of the instance, oldest first."""
        instance_id = self._resolve(instance).id
        return list(self.session.scalars(select(WorkflowStep).where(
            WorkflowStep.instance_id == instance_id).order_by(WorkflowStep.id)))

    def _resolve(self, instance: WorkflowInstance | int) -> WorkflowInstance:
        if isinstance(instance, WorkflowInstance):
            return instance if instance in self.session else self.get(instance.id)
        return self.get(instance)

    # -- writing --------------------------------------------------------------------------

    def start(self, workflow: str, *, customer: Customer | int | None = None,
              subject_type: str | None = None, subject_id: Any = None,
              data: Mapping[str, Any] | None = None) -> WorkflowInstance:
        """Start ``workflow`` for a subject (a customer by default) in its initial state.

        ``subject_type`` and ``subject_id`` name a plugin's record; ``customer`` is the
        customer it belongs to (guards are evaluated against it). A customer subject is
        its own customer.
        """
        definition = self.definitions.get(workflow)
        customer_id = customer.id if isinstance(customer, Customer) else customer
        if customer_id is not None and (isinstance(customer_id, bool)
                                        or not isinstance(customer_id, int)):
            raise ValidationError([Issue("customer", "must be a customer or its integer id, "
                                         f"got {short_repr(customer)}", customer)])
        if subject_type is None:
            if customer_id is None:
                raise ValidationError([Issue("subject", "give a customer or a subject")])
            subject_type, subject_id = "customer", customer_id
        if subject_type != definition.subject:
            raise ValidationError([Issue("subject_type", f"workflow {workflow!r} is for "
                                         f"{definition.subject}, not {subject_type}")])
        if subject_type == "customer":
            if customer_id is None and isinstance(subject_id, int) \
                    and not isinstance(subject_id, bool):
                customer_id = subject_id
            if customer_id is None or str(subject_id) != str(customer_id):
                raise ValidationError([Issue("subject_id", "a customer subject is the customer "
                                             f"itself: give customer={short_repr(subject_id)}",
                                             subject_id)])
        if subject_id is None or isinstance(subject_id, bool) \
                or not isinstance(subject_id, str | int) or not 1 <= len(str(subject_id)) <= 100:
            raise ValidationError([Issue("subject_id", "must be given, as text or an integer of "
                                         f"1 to 100 characters, got {short_repr(subject_id)}",
                                         subject_id)])
        payload = _checked_data(data)
        if customer_id is not None:
            self.tx.customers.get(customer_id)
        if self.find(workflow, subject_type, subject_id) is not None:
            raise Conflict(f"workflow {workflow!r} is already running for {subject_type} "
                           f"{subject_id}")
        now = utcnow()
        instance = WorkflowInstance(
            workflow=workflow, subject_type=subject_type, subject_id=str(subject_id),
            customer_id=customer_id, state=definition.initial, data=dict(payload),
            started_at=now, updated_at=now, state_entered_at=now,
            closed_at=now if definition.initial in definition.final else None,
        )
        due = self._due_timers(definition, instance, now)
        self.session.add(instance)
        self.session.flush()
        step = self._record(instance, "start", None, definition.initial, payload, now)
        self._arm(instance, due)
        self.tx.audit("workflow_instance", instance.id, "start",
                      {"after": {"workflow": workflow, "state": instance.state,
                                 "subject": f"{subject_type}:{subject_id}"}})
        self.tx.emit("workflow.started", _event(instance, step))
        return instance

    def fire(self, instance: WorkflowInstance | int, transition: str, *,
             data: Mapping[str, Any] | None = None, expected_version: int | None = None
             ) -> WorkflowStep:
        """Move ``instance`` along ``transition``; refuse what the workflow does not allow.

        ``instance`` is an id or an instance; one read in an earlier transaction is
        reloaded, and the version it had is the one expected (a stale copy is a
        :class:`Conflict`, never a transition from a state the instance has left).
        """
        return self._fire(instance, transition, data=data, expected_version=expected_version,
                          now=utcnow())

    def _fire(self, instance: WorkflowInstance | int, transition: str, *,
              data: Mapping[str, Any] | None, expected_version: int | None, now: dt.datetime
              ) -> WorkflowStep:
        if isinstance(instance, WorkflowInstance) and instance not in self.session:
            if expected_version is None:
                expected_version = instance.version
            instance = instance.id
        instance = self._resolve(instance)
        if expected_version is not None and expected_version != instance.version:
            raise Conflict(f"workflow instance {instance.id} moved on (version "
                           f"{instance.version}, you had {expected_version}); reload and retry")
        definition = self.definitions.get(instance.workflow)
        move = definition.transition(transition)
        if move is None:
            raise ValidationError([Issue("transition", f"workflow {definition.name!r} has no "
                                         f"transition {short_repr(transition)}; from "
                                         f"{instance.state!r} it allows: "
                                         f"{_names(definition, instance.state)}")])
        if instance.state not in move.sources:
            raise Rejected(f"{instance.workflow} instance {instance.id} is in state "
                           f"{instance.state!r}; {transition!r} needs "
                           f"{' or '.join(map(repr, move.sources))} (allowed now: "
                           f"{_names(definition, instance.state)})")
        payload = _checked_data(data)
        self._check_guard(instance, move, now)
        self.tx.crm.host.before_transition(tx=self.tx, instance=instance, transition=move,
                                           data=payload)
        payload = _checked_data(payload)  # what the plugins made of it must be JSON too
        merged = {**instance.data, **payload}
        due = self._due_timers(definition, instance, now, state=move.target, data=merged,
                               taken=move.name)
        source = instance.state
        instance.state = move.target
        instance.state_entered_at = now
        instance.updated_at = now
        instance.data = merged
        if move.target in definition.final:
            instance.closed_at = now
        instance_id = instance.id  # the failed flush below expires the instance
        try:
            self.session.flush()  # the version check
        except StaleDataError:
            raise Conflict(f"workflow instance {instance_id} was moved by a concurrent "
                           "transaction; nothing was written, reload and retry") from None
        step = self._record(instance, transition, source, move.target, payload, now)
        self.session.execute(update(WorkflowTimer).where(
            WorkflowTimer.instance_id == instance.id, WorkflowTimer.status == "pending",
        ).values(status="cancelled"))
        self._arm(instance, due)
        self.tx.audit("workflow_instance", instance.id, "transition",
                      {"before": {"state": source}, "after": {"state": move.target},
                       "transition": transition})
        self.tx.emit("workflow.transitioned", _event(instance, step))
        self.tx.crm.host.workflow_transitioned(tx=self.tx, instance=instance, step=step)
        return step

    def _check_guard(self, instance: WorkflowInstance, move: Transition, now: dt.datetime
                     ) -> None:
        if move.guard is None:
            return
        if instance.customer_id is None:
            raise Rejected(f"transition {move.name!r} has a guard but the instance belongs to "
                           "no customer")
        matches = self.session.scalar(select(exists(select(Customer.id).where(
            Customer.id == instance.customer_id, move.guard.to_sql(now)))))
        if not matches:
            raise Rejected(f"the guard of {move.name!r} is not met by customer "
                           f"{instance.customer_id}: {move.guard.document}")

    def _record(self, instance: WorkflowInstance, transition: str, source: str | None,
                target: str, data: dict[str, Any], now: dt.datetime) -> WorkflowStep:
        step = WorkflowStep(instance_id=instance.id, transition=transition, from_state=source,
                            to_state=target, actor=self.tx.actor, at=now, data=data)
        self.session.add(step)
        self.session.flush()
        return step

    @staticmethod
    def _due_timers(definition: WorkflowDefinition, instance: WorkflowInstance,
                    entered_at: dt.datetime, *, state: str | None = None,
                    data: Mapping[str, Any] | None = None, taken: str | None = None
                    ) -> builtins.list[tuple[str, dt.datetime]]:
        """The timers of ``state`` (the instance's by default): computed before anything is
        written, so a bad ``at`` time refuses the transition instead of half-applying it.

        An ``at`` timer is not armed again by its own transition (``taken``, a transition
        back to a state it leaves) for a time that has come: that deadline was just dealt
        with, and re-arming it would fire the transition again and again.
        """
        due: builtins.list[tuple[str, dt.datetime]] = []
        for move in definition.available(state or instance.state):
            if move.timer is None:
                continue
            when = move.timer.due(entered_at, instance.data if data is None else data)
            if when is None or (move.timer.at_key is not None and move.name == taken
                                and when <= entered_at):
                continue
            due.append((move.name, when))
        return due

    def _arm(self, instance: WorkflowInstance, due: builtins.list[tuple[str, dt.datetime]]
             ) -> None:
        for transition, when in due:
            self.session.add(WorkflowTimer(instance_id=instance.id, transition=transition,
                                           due_at=when, status="pending"))


def _checked_data(data: Any) -> dict[str, Any]:
    """``data`` as a dict that JSON stores and reads back unchanged."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValidationError([Issue("data", "must be a table of values, got "
                                     f"{type(data).__name__}", short_repr(data))])
    issues: list[Issue] = []
    for key, value in data.items():
        if not isinstance(key, str):
            issues.append(Issue("data", f"keys must be text, got {short_repr(key)}"))
        elif not _is_json(value):
            issues.append(Issue(f"data.{key}", "must be JSON (text, numbers, booleans, null, "
                                f"lists, tables), got {short_repr(value)}"))
    if issues:
        raise ValidationError(issues)
    result = dict(data)
    if len(json.dumps(result)) > MAX_DATA:
        raise ValidationError([Issue("data", f"is larger than {MAX_DATA:,} characters as JSON")])
    return result


#: Data given with one start or transition, as JSON.
MAX_DATA = 100_000


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 32:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _names(definition: WorkflowDefinition, state: str) -> str:
    if state not in definition.states:
        return f"nothing: the definition no longer has state {state!r}"
    return ", ".join(t.name for t in definition.available(state)) or "nothing (final)"


def _event(instance: WorkflowInstance, step: WorkflowStep) -> dict[str, Any]:
    return {
        "instance_id": instance.id, "workflow": instance.workflow,
        "subject_type": instance.subject_type, "subject_id": instance.subject_id,
        "customer_id": instance.customer_id, "transition": step.transition,
        "from": step.from_state, "to": step.to_state, "data": step.data,
    }


def fire_due_timers(crm: Crm, *, now: dt.datetime | None = None, limit: int = 100
                    ) -> TimerResult:
    """Fire every due timer once, each in its own transaction; at most ``limit`` of them.

    ``now`` is the time the pass acts at (default: the clock): timers due by then fire,
    their history steps are recorded at ``now`` and the timers of the states they enter
    are armed from ``now``.

    Exactly once, also with several workers: a timer is fired and marked in one
    transaction, which first locks the timer's instance with ``FOR UPDATE SKIP LOCKED``
    (SQLite: the write lock) and then re-reads the timer. A transition takes the same
    locks in the same order (instance, then its timers), so workers and users never
    deadlock; an instance another transaction holds is skipped until the next pass. A
    timer whose transition is refused (a guard, a veto, a failing plugin, a transition the
    definition no longer has) is marked failed with the reason.
    """
    if now is not None and now.tzinfo is None:
        raise ValidationError([Issue("now", "must be timezone-aware", now)])
    result = TimerResult()
    skip: set[int] = set()
    for _ in range(limit):
        claimed: list[int] = []
        try:
            outcome = _fire_one(crm, now or utcnow(), skip, claimed)
        except Conflict:
            # A collision (a database constraint, a plugin's own version check): nothing
            # was written and the timer stays due, for a later pass.
            skip.update(claimed)
            continue
        if outcome is None:
            break
        if outcome:
            result.fired += 1
        else:
            result.failed += 1
    return result


def _fire_one(crm: Crm, now: dt.datetime, skip: set[int], claimed: list[int]) -> bool | None:
    """Claim and fire one due timer: ``True`` fired, ``False`` failed, ``None`` none left."""
    locking = crm.engine.dialect.name != "sqlite"
    with crm.transaction(actor=TIMER_ACTOR) as tx:
        session = tx.session
        query = (select(WorkflowTimer.id, WorkflowTimer.instance_id)
                 .where(WorkflowTimer.status == "pending", WorkflowTimer.due_at <= now)
                 .order_by(WorkflowTimer.due_at, WorkflowTimer.id).limit(CLAIM_BATCH))
        if skip:
            query = query.where(WorkflowTimer.id.not_in(skip))
        for timer_id, instance_id in session.execute(query).all():
            if locking:
                lock = (select(WorkflowInstance).where(WorkflowInstance.id == instance_id)
                        .with_for_update(skip_locked=True)
                        .execution_options(populate_existing=True))
                if session.scalars(lock).first() is None:
                    continue  # another worker or a user transaction holds it
            claim = (select(WorkflowTimer)
                     .where(WorkflowTimer.id == timer_id, WorkflowTimer.status == "pending")
                     .execution_options(populate_existing=True))
            if locking:
                claim = claim.with_for_update(skip_locked=True)
            timer = session.scalars(claim).first()
            if timer is None:
                continue  # fired or cancelled since the query
            claimed.append(timer.id)
            return _fire_claimed(tx, timer, now)
        return None


def _fire_claimed(tx: Transaction, timer: WorkflowTimer, now: dt.datetime) -> bool:
    savepoint = tx.session.begin_nested()
    try:
        instance = tx.workflows.get(timer.instance_id)
        definition = tx.crm.workflows.definitions.get(instance.workflow)
        move = definition.transition(timer.transition) if definition is not None else None
        if move is not None and move.timer is None:
            raise Rejected(f"transition {timer.transition!r} of workflow "
                           f"{instance.workflow!r} no longer has a timer")
        tx.workflows._fire(instance, timer.transition, data={"timer_id": timer.id},
                           expected_version=None, now=now)
    except Conflict:
        raise  # a collision, not a refusal: the timer stays due for a later pass
    except CrmkitError as exc:
        savepoint.rollback()
        timer.status, timer.error, timer.fired_at = "failed", str(exc)[:2000], now
        return False
    savepoint.commit()
    # The transition cancelled the instance's pending timers, this one included: it fired.
    tx.session.refresh(timer)
    timer.status, timer.fired_at = "fired", now
    return True
