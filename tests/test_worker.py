"""The worker loop: periodic plugin work, timers and events in one process."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

import crmkit
from crmkit.models import OutboxEvent
from crmkit.worker import WorkerTotals, run_periodic, run_worker


class Ticker:
    def __init__(self) -> None:
        self.ticks: list[Any] = []

    @crmkit.hookimpl
    def run_periodic(self, crm: Any, now: Any) -> None:
        assert now.tzinfo is not None
        self.ticks.append(now)


class Broken:
    @crmkit.hookimpl
    def run_periodic(self, crm: Any, now: Any) -> None:
        raise RuntimeError("cron job crashed")


def test_periodic_work_runs_for_every_plugin_and_a_failure_stops_nobody(
    crm_factory: Any, caplog: Any
) -> None:
    ticker = Ticker()
    crm = crm_factory(plugins={"ticker": ticker, "broken": Broken()})
    run_periodic(crm)
    assert len(ticker.ticks) == 1
    assert "plugin 'broken' failed in hook 'run_periodic': RuntimeError: cron job crashed" \
        in caplog.text


def delivered(crm: Any) -> int:
    with crm.session() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxEvent)
                                  .where(OutboxEvent.status == "delivered")) or 0)


def test_the_worker_delivers_and_runs_periodic_work_on_its_schedule(crm_factory: Any) -> None:
    ticker = Ticker()
    crm = crm_factory(plugins={"ticker": ticker},
                      config={"events": {"dispatch": "worker", "periodic_seconds": 3600}})
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Jana")
    assert delivered(crm) == 0
    stop = threading.Event()
    totals: list[WorkerTotals] = []
    worker = threading.Thread(target=lambda: totals.append(run_worker(crm, stop, 0.05)))
    worker.start()
    try:
        for _ in range(400):
            if delivered(crm):
                break
            stop.wait(0.05)
        stop.wait(0.3)  # several more passes: periodic work must not run again
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert delivered(crm) == 1
    assert totals and totals[0].delivered == 1
    assert len(ticker.ticks) == 1  # at start, then not again within periodic_seconds
