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

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import exists, select, update

from crmkit.db import utcnow
from crmkit.errors import Conflict, CrmkitError, Issue, NotFound, Rejected, ValidationError
from crmkit.models import Customer, WorkflowInstance, WorkflowStep, WorkflowTimer
from crmkit.workflow.definition import Transition, WorkflowDefinition

if TYPE_CHECKING:
    from crmkit.app import Crm
    from crmkit.uow import Page, Transaction

__all__ = ["TimerResult", "WorkflowRepository", "fire_due_timers"]

TIMER_ACTOR = "timer"


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

        if not 1 <= limit <= MAX_PAGE:
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

    def history(self, instance: WorkflowInstance | int) -> list[WorkflowStep]:
        """Every step of the instance, oldest first."""
        instance_id = instance if isinstance(instance, int) else instance.id
        if isinstance(instance, int):
            self.get(instance_id)
        return list(self.session.scalars(select(WorkflowStep).where(
            WorkflowStep.instance_id == instance_id).order_by(WorkflowStep.id)))

    # -- writing --------------------------------------------------------------------------

    def start(self, workflow: str, *, customer: Customer | int | None = None,
              subject_type: str | None = None, subject_id: Any = None,
              data: Mapping[str, Any] | None = None) -> WorkflowInstance:
        """Start ``workflow`` for a subject (a customer by default) in its initial state."""
        definition = self.definitions.get(workflow)
        customer_id = customer.id if isinstance(customer, Customer) else customer
        if customer_id is not None:
            self.tx.customers.get(customer_id)
        if subject_type is None:
            if customer_id is None:
                raise ValidationError([Issue("subject", "give a customer or a subject")])
            subject_type, subject_id = "customer", customer_id
        if subject_type != definition.subject:
            raise ValidationError([Issue("subject_type", f"workflow {workflow!r} is for "
                                         f"{definition.subject}, not {subject_type}")])
        if subject_id is None or len(str(subject_id)) > 100:
            raise ValidationError([Issue("subject_id", "must be given, at most 100 characters")])
        if self.find(workflow, subject_type, subject_id) is not None:
            raise Conflict(f"workflow {workflow!r} is already running for {subject_type} "
                           f"{subject_id}")
        now = utcnow()
        instance = WorkflowInstance(
            workflow=workflow, subject_type=subject_type, subject_id=str(subject_id),
            customer_id=customer_id, state=definition.initial, data=dict(data or {}),
            started_at=now, updated_at=now, state_entered_at=now,
            closed_at=now if definition.initial in definition.final else None,
        )
        self.session.add(instance)
        self.session.flush()
        step = self._record(instance, "start", None, definition.initial, dict(data or {}), now)
        self._arm(definition, instance, now)
        self.tx.audit("workflow_instance", instance.id, "start",
                      {"after": {"workflow": workflow, "state": instance.state,
                                 "subject": f"{subject_type}:{subject_id}"}})
        self.tx.emit("workflow.started", _event(instance, step))
        return instance

    def fire(self, instance: WorkflowInstance | int, transition: str, *,
             data: Mapping[str, Any] | None = None, expected_version: int | None = None
             ) -> WorkflowStep:
        """Move ``instance`` along ``transition``; refuse what the workflow does not allow."""
        if isinstance(instance, int):
            instance = self.get(instance)
        if expected_version is not None and expected_version != instance.version:
            raise Conflict(f"workflow instance {instance.id} moved on (version "
                           f"{instance.version}, you had {expected_version}); reload and retry")
        definition = self.definitions.get(instance.workflow)
        move = definition.transition(transition)
        if move is None:
            raise ValidationError([Issue("transition", f"workflow {definition.name!r} has no "
                                         f"transition {transition!r}; from {instance.state!r}"
                                         f" it allows: {_names(definition, instance.state)}")])
        if instance.state not in move.sources:
            raise Rejected(f"{instance.workflow} instance {instance.id} is in state "
                           f"{instance.state!r}; {transition!r} needs "
                           f"{' or '.join(map(repr, move.sources))} (allowed now: "
                           f"{_names(definition, instance.state)})")
        payload = dict(data or {})
        self._check_guard(instance, move)
        self.tx.crm.host.before_transition(tx=self.tx, instance=instance, transition=move,
                                           data=payload)
        now = utcnow()
        source = instance.state
        instance.state = move.target
        instance.state_entered_at = now
        instance.updated_at = now
        instance.data = {**instance.data, **payload}
        if move.target in definition.final:
            instance.closed_at = now
        self.session.flush()  # the version check: a concurrent transition raises Conflict
        step = self._record(instance, transition, source, move.target, payload, now)
        self.session.execute(update(WorkflowTimer).where(
            WorkflowTimer.instance_id == instance.id, WorkflowTimer.status == "pending",
        ).values(status="cancelled"))
        self._arm(definition, instance, now)
        self.tx.audit("workflow_instance", instance.id, "transition",
                      {"before": {"state": source}, "after": {"state": move.target},
                       "transition": transition})
        self.tx.emit("workflow.transitioned", _event(instance, step))
        self.tx.crm.host.workflow_transitioned(tx=self.tx, instance=instance, step=step)
        return step

    def _check_guard(self, instance: WorkflowInstance, move: Transition) -> None:
        if move.guard is None:
            return
        if instance.customer_id is None:
            raise Rejected(f"transition {move.name!r} has a guard but the instance belongs to "
                           "no customer")
        matches = self.session.scalar(select(exists(select(Customer.id).where(
            Customer.id == instance.customer_id, move.guard.to_sql()))))
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

    def _arm(self, definition: WorkflowDefinition, instance: WorkflowInstance,
             entered_at: dt.datetime) -> None:
        for move in definition.available(instance.state):
            if move.timer is None:
                continue
            due = move.timer.due(entered_at, instance.data)
            if due is not None:
                self.session.add(WorkflowTimer(instance_id=instance.id, transition=move.name,
                                               due_at=due, status="pending"))


def _names(definition: WorkflowDefinition, state: str) -> str:
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
    """Fire every due timer once, each in its own transaction.

    A timer is claimed with ``FOR UPDATE SKIP LOCKED`` (the write lock on SQLite), fired
    and marked in the same transaction, so two workers never fire one timer twice. A timer
    whose transition is refused (a guard, a veto, the instance moved on) is marked failed
    with the reason.
    """
    result = TimerResult()
    for _ in range(limit):
        try:
            outcome = _fire_one(crm, now or utcnow())
        except Conflict:
            continue  # the instance moved concurrently; the timer stays due for the next pass
        if outcome is None:
            break
        if outcome:
            result.fired += 1
        else:
            result.failed += 1
    return result


def _fire_one(crm: Crm, now: dt.datetime) -> bool | None:
    with crm.transaction(actor=TIMER_ACTOR) as tx:
        query = (select(WorkflowTimer)
                 .where(WorkflowTimer.status == "pending", WorkflowTimer.due_at <= now)
                 .order_by(WorkflowTimer.due_at, WorkflowTimer.id).limit(1))
        if crm.engine.dialect.name != "sqlite":
            query = query.with_for_update(skip_locked=True)
        timer = tx.session.scalars(query).first()
        if timer is None:
            return None
        savepoint = tx.session.begin_nested()
        try:
            tx.workflows.fire(timer.instance_id, timer.transition,
                              data={"timer_id": timer.id})
        except CrmkitError as exc:
            savepoint.rollback()
            timer.status, timer.error, timer.fired_at = "failed", str(exc)[:2000], now
            return False
        savepoint.commit()
        # fire() cancelled the instance's pending timers, this one included: it fired.
        tx.session.refresh(timer)
        timer.status, timer.fired_at = "fired", now
        return True
