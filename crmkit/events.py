"""Domain events, the transactional outbox, and the dispatcher that delivers it.

Every change writes its events to ``outbox_event`` in the same transaction. After commit,
the :class:`Dispatcher` delivers each event to every ``handle_event`` implementation:
inline right after commit in the embedded default, or from ``crmkit worker`` processes.

Claiming uses a lease: a short transaction picks due events (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and MariaDB, the database write lock on SQLite), counts the attempt and moves
``next_attempt_at`` past the lease; delivery then runs outside any transaction, so handlers
may open their own. A worker that dies mid-delivery leaves the event to be claimed again
when the lease ends: delivery is at least once.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs
from sqlalchemy import CursorResult, select, update

from crmkit.db import utcnow
from crmkit.errors import CrmkitError, NotFound
from crmkit.models import OutboxEvent

if TYPE_CHECKING:
    from crmkit.app import Crm

__all__ = ["DispatchResult", "Dispatcher", "Event"]

log = logging.getLogger(__name__)


@attrs.frozen
class Event:
    """A committed domain event, as ``handle_event`` receives it.

    ``name`` is dotted, ``<owner>.<what happened>`` (``customer.created``,
    ``interaction.logged``, ``sales.opportunity_won``); ``id`` is a stable idempotency key.
    """

    id: int
    name: str
    payload: dict[str, Any]
    actor: str | None
    created_at: dt.datetime
    attempt: int = 1


@attrs.frozen
class Outcome:
    """How delivering one event went: the errors, and the longest ``Retry-After`` asked."""

    error: str | None
    retry_after: float | None = None


@attrs.define
class DispatchResult:
    """What one dispatcher pass did."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0

    @property
    def claimed(self) -> int:
        return self.delivered + self.retrying + self.dead


class Dispatcher:
    """Delivers outbox events to ``handle_event`` implementations, with retries."""

    def __init__(self, crm: Crm) -> None:
        self.crm = crm
        self.settings = crm.config.events

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number ``attempts + 1``: exponential, capped, jittered."""
        base = self.settings.backoff_seconds * 2.0 ** (attempts - 1)
        return min(self.settings.max_backoff_seconds, base) * random.uniform(0.5, 1.0)

    def claim(self, limit: int, ids: Sequence[int] | None = None) -> list[OutboxEvent]:
        """Lease up to ``limit`` due events (or the given ``ids``, if due)."""
        now = utcnow()
        lease_end = now + dt.timedelta(seconds=self.settings.lease_seconds)
        with self.crm.session() as session, session.begin():
            query = (
                select(OutboxEvent)
                .where(OutboxEvent.status == "pending", OutboxEvent.next_attempt_at <= now)
                .order_by(OutboxEvent.id)
                .limit(limit)
            )
            if ids is not None:
                query = query.where(OutboxEvent.id.in_(list(ids)))
            if session.bind is not None and session.bind.dialect.name != "sqlite":
                query = query.with_for_update(skip_locked=True)
            events = list(session.scalars(query))
            for event in events:
                event.attempts += 1
                event.next_attempt_at = lease_end
            session.flush()
            session.expunge_all()
        return events

    def deliver(self, row: OutboxEvent) -> Outcome:
        """Call every subscriber that has not yet handled ``row``: each plugin's
        ``handle_event``, then each automation rule listening to the event."""
        event = Event(
            id=row.id, name=row.name, payload=dict(row.payload), actor=row.actor,
            created_at=row.created_at, attempt=row.attempts,
        )
        done = list(row.delivered_to or [])
        errors: list[str] = []
        wait: float | None = None
        for subscriber, deliver in self.subscribers(event):
            if subscriber in done:
                continue
            try:
                deliver()
            except Exception as exc:  # a subscriber's failure must not stop the others
                log.warning("event %s (%s), %s: %s", row.id, row.name, subscriber, exc)
                if isinstance(exc, CrmkitError) and exc.plugin:
                    errors.append(str(exc))  # already names the plugin and the hook
                elif isinstance(exc, CrmkitError):
                    errors.append(f"{subscriber}: {exc}")
                else:
                    errors.append(f"{subscriber}: {exc!r}")
                asked = getattr(exc, "retry_after", None)
                if isinstance(asked, (int, float)):
                    wait = max(wait or 0.0, float(asked))
            else:
                done.append(subscriber)
        row.delivered_to = done
        return Outcome("; ".join(errors)[:4000] if errors else None, wait)

    def subscribers(self, event: Event) -> list[tuple[str, Callable[[], None]]]:
        """``(name, deliver)`` for everything that receives ``event``, in order."""
        found: list[tuple[str, Callable[[], None]]] = []
        for plugin, function, argnames in self.crm.host.event_handlers():
            found.append((plugin, functools.partial(
                self.crm.host.handle_event, plugin, function, argnames, crm=self.crm,
                event=event)))
        for rule in self.crm.rules.for_event(event.name):
            found.append((rule.subscriber, functools.partial(self.crm.rules.run, self.crm, rule,
                                                             event)))
        return found

    def record(self, row: OutboxEvent, outcome: Outcome, result: DispatchResult) -> None:
        """Store the outcome of delivering ``row`` (claimed by this worker) and count it.

        The attempt number the claim wrote is the lease's fencing token: when the lease ran
        out and another worker claimed the event again (or an operator retried it), the
        event is no longer this worker's to update, and its late outcome is dropped.
        """
        now = utcnow()
        error = outcome.error
        values: dict[str, Any] = {"delivered_to": row.delivered_to, "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=now)
            state = "delivered"
        elif row.attempts >= self.settings.max_attempts:
            values.update(status="dead")
            state = "dead"
        else:
            # A subscriber's Retry-After is the earliest next attempt, never earlier.
            delay = max(self.backoff(row.attempts), outcome.retry_after or 0.0)
            values.update(next_attempt_at=now + dt.timedelta(seconds=delay))
            state = "retrying"
        with self.crm.session() as session, session.begin():
            updated = cast(CursorResult[Any], session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == row.id, OutboxEvent.status == "pending",
                       OutboxEvent.attempts == row.attempts)
                .values(**values)
                .execution_options(synchronize_session=False)
            )).rowcount
        if not updated:
            log.warning("event %s (%s): the lease of attempt %s ran out before delivery "
                        "ended; the outcome (%s) is dropped", row.id, row.name, row.attempts,
                        error or "delivered")
            return
        setattr(result, state, getattr(result, state) + 1)
        if state == "dead":
            log.error("event %s (%s) is dead after %s attempts", row.id, row.name, row.attempts)

    def run_once(
        self, limit: int | None = None, ids: Sequence[int] | None = None
    ) -> DispatchResult:
        """Claim and deliver one batch of due events."""
        result = DispatchResult()
        for row in self.claim(limit or self.settings.batch_size, ids):
            self.record(row, self.deliver(row), result)
        return result

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> DispatchResult:
        """Deliver until ``stop`` is set, sleeping ``poll_seconds`` when nothing is due."""
        total = DispatchResult()
        while not stop.is_set():
            result = self.run_once()
            total.delivered += result.delivered
            total.retrying += result.retrying
            total.dead += result.dead
            if result.claimed == 0:
                stop.wait(poll_seconds)
        return total

    def retry(self, ids: Iterable[int] = (), *, all_dead: bool = False) -> int:
        """Make dead (or pending) events due now, with a fresh attempt count."""
        ids = list(ids)
        with self.crm.session() as session, session.begin():
            query = update(OutboxEvent).values(
                status="pending", attempts=0, next_attempt_at=utcnow()
            )
            if all_dead:
                query = query.where(OutboxEvent.status == "dead")
            else:
                found = set(session.scalars(select(OutboxEvent.id).where(OutboxEvent.id.in_(ids))))
                if missing := sorted(set(ids) - found):
                    raise NotFound(f"no event with id {', '.join(map(str, missing))}")
                query = query.where(OutboxEvent.id.in_(ids), OutboxEvent.status != "delivered")
            count: int = cast(CursorResult[Any], session.execute(query)).rowcount
        return count
