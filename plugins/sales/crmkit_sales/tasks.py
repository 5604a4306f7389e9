"""Follow-ups: tasks and scheduled calls, meetings and e-mails on a lead, an opportunity or
a customer. Completing an activity logs it on the customer's timeline; overdue follow-ups
are listed and announced once each as ``sales.task_overdue``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmkit import Conflict, Issue, NotFound, ValidationError
from crmkit.db import utcnow
from sqlalchemy import select

from crmkit_sales import leads, opportunities, values
from crmkit_sales.models import Task

if TYPE_CHECKING:
    import datetime as dt

    from crmkit.uow import Transaction

__all__ = ["KINDS", "add", "complete", "get", "list_", "notify_overdue"]

KINDS = ("task", "call", "meeting", "email")


def add(tx: Transaction, *, kind: str, title: str, due: Any, owner: str | None = None,
        lead: int | None = None, opportunity: int | None = None, customer: int | None = None
        ) -> Task:
    """Schedule a follow-up on exactly one of a lead, an opportunity or a customer."""
    values.check_choice("kind", kind, KINDS)
    clean = values.text("title", title, required=True)
    due_at = values.moment("due", due)
    targets = [(n, v) for n, v in (("lead", lead), ("opportunity", opportunity),
                                   ("customer", customer)) if v is not None]
    if len(targets) != 1:
        raise ValidationError([Issue("target", "attach the follow-up to exactly one lead, "
                                     "opportunity or customer")])
    customer_id = None
    if lead is not None:
        found = leads.get(tx, lead)
        customer_id = found.customer_id
    elif opportunity is not None:
        customer_id = opportunities.get(tx, opportunity).customer_id
    else:
        customer_id = tx.customers.get(values.positive_id("customer", customer)).id
    task = Task(kind=kind, title=clean, due_at=due_at, status="open",
                owner=values.text("owner", owner, max_length=100), lead_id=lead,
                opportunity_id=opportunity, customer_id=customer_id, created_at=utcnow())
    tx.session.add(task)
    tx.session.flush()
    tx.audit("sales_task", task.id, "create", {"after": task.to_dict()})
    tx.emit("sales.task_added", {"task_id": task.id, "customer_id": customer_id,
                                 "due_at": due_at.isoformat(), "owner": task.owner})
    return task


def get(tx: Transaction, task_id: int) -> Task:
    task = tx.session.get(Task, values.positive_id("task", task_id))
    if task is None:
        raise NotFound(f"no task with id {task_id}")
    return task


def list_(tx: Transaction, *, owner: str | None = None, status: str | None = "open",
          overdue: bool = False, now: dt.datetime | None = None, limit: int = 200
          ) -> list[Task]:
    """Follow-ups by due time; ``overdue`` keeps the open ones past due."""
    query = select(Task).order_by(Task.due_at, Task.id).limit(limit)
    if owner:
        query = query.where(Task.owner == owner)
    if overdue:
        query = query.where(Task.status == "open", Task.due_at < (now or utcnow()))
    elif status:
        query = query.where(Task.status == status)
    return list(tx.session.scalars(query))


def complete(tx: Transaction, task_id: int, outcome: str | None = None) -> Task:
    """Mark a follow-up done; an activity on a customer is logged on its timeline (one on
    a lead is copied there when the lead is converted)."""
    task = get(tx, task_id)
    if task.status == "done":
        raise Conflict(f"task {task.id} is already done")
    task.status, task.done_at = "done", utcnow()
    task.outcome = values.text("outcome", outcome, max_length=5000)
    if task.customer_id is not None:
        interaction = tx.interactions.log(
            task.customer_id, channel=leads.CHANNEL_OF[task.kind], kind="sales_activity",
            direction="outbound", actor=task.owner,
            summary=task.title + (f": {task.outcome}" if task.outcome else ""),
            payload={"task_id": task.id, "event": task.kind,
                     **({"opportunity_id": task.opportunity_id} if task.opportunity_id
                        else {}),
                     **({"lead_id": task.lead_id} if task.lead_id else {})})
        task.interaction_id = interaction.id
    tx.session.flush()
    tx.audit("sales_task", task.id, "done", {"after": {"status": "done",
                                                       "outcome": task.outcome}})
    tx.emit("sales.task_done", {"task_id": task.id, "customer_id": task.customer_id,
                                "interaction_id": task.interaction_id})
    return task


def notify_overdue(tx: Transaction, *, now: dt.datetime | None = None) -> list[Task]:
    """Emit ``sales.task_overdue`` once for every overdue follow-up not yet announced."""
    moment = now or utcnow()
    query = (select(Task)
             .where(Task.status == "open", Task.due_at < moment,
                    Task.overdue_notified_at.is_(None))
             .order_by(Task.due_at, Task.id).limit(10_000))
    if tx.session.get_bind().dialect.name != "sqlite":
        # Several workers run this at once: each claims its own rows (SQLite's write lock
        # already serialises them).
        query = query.with_for_update(skip_locked=True)
    due = list(tx.session.scalars(query))
    for task in due:
        task.overdue_notified_at = moment
        tx.emit("sales.task_overdue", {
            "task_id": task.id, "kind": task.kind, "title": task.title, "owner": task.owner,
            "due_at": task.due_at.isoformat(), "customer_id": task.customer_id,
            "lead_id": task.lead_id, "opportunity_id": task.opportunity_id})
    tx.session.flush()
    return due
