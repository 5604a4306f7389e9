"""The background worker: delivers outbox events and fires due workflow timers."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import attrs
from sqlalchemy.exc import DBAPIError

from crmkit.db import utcnow
from crmkit.errors import CrmkitError
from crmkit.workflow import fire_due_timers

if TYPE_CHECKING:
    from crmkit.app import Crm

__all__ = ["WorkerTotals", "run_periodic", "run_worker", "work_once"]

log = logging.getLogger(__name__)


@attrs.define
class WorkerTotals:
    """What a worker did since it started."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    timers_fired: int = 0
    timers_failed: int = 0

    def add(self, other: WorkerTotals) -> None:
        for field in attrs.fields(WorkerTotals):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def busy(self) -> bool:
        return any(getattr(self, f.name) for f in attrs.fields(WorkerTotals))


def work_once(crm: Crm) -> WorkerTotals:
    """One pass: fire due timers (their transitions emit events), then deliver events."""
    timers = fire_due_timers(crm, limit=crm.config.events.batch_size)
    events = crm.dispatcher.run_once()
    return WorkerTotals(events.delivered, events.retrying, events.dead, timers.fired,
                        timers.failed)


def run_periodic(crm: Crm) -> None:
    """Give every plugin its ``run_periodic`` turn; log, never raise, their failures."""
    for error in crm.host.run_periodic(crm=crm, now=utcnow()):
        log.error("periodic work failed: %s", error)


def run_worker(crm: Crm, stop: threading.Event, poll_seconds: float = 1.0) -> WorkerTotals:
    """Work until ``stop`` is set, waiting ``poll_seconds`` whenever nothing was due, and
    run the plugins' periodic work every ``events.periodic_seconds``."""
    total = WorkerTotals()
    every = crm.config.events.periodic_seconds
    next_periodic = time.monotonic()
    failures = 0
    while not stop.is_set():
        if time.monotonic() >= next_periodic:
            run_periodic(crm)
            next_periodic = time.monotonic() + every
        try:
            done = work_once(crm)
        except (CrmkitError, DBAPIError) as exc:
            # The database is down or unreachable: keep the worker alive, wait and retry.
            failures += 1
            log.error("worker pass failed (%s); retrying in %.0f s", exc,
                      min(60.0, poll_seconds * 2**failures))
            stop.wait(min(60.0, poll_seconds * 2**failures))
            continue
        failures = 0
        total.add(done)
        if not done.busy:
            stop.wait(poll_seconds)
    return total
