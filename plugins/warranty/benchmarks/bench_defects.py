"""The defect report over 1,000,000 units and 50,000 claims, against a bare aggregate query.

Run (from the repository root, in crmkit's virtual environment)::

    python plugins/warranty/benchmarks/bench_defects.py            # SQLite, 1M units
    python plugins/warranty/benchmarks/bench_defects.py --url postgresql+psycopg://...

The database is migrated with the kernel's and the plugin's own migrations, then filled
with ``--units`` units (200 products on 20 lines, 500 units per batch, purchases spread over
24 months) and ``--claims`` claims on random units (5% of them rejected). Interleaved, with
a warm cache, it times:

* **subject** — what ``crmkit warranty report defects --by product`` (and ``--by batch``)
  runs: :func:`crmkit_warranty.analytics.defect_report` through an ORM session, rows
  rounded into dicts;
* **reference** — the bare aggregates over the same tables on a plain connection, with no
  joins to the catalogue and no outer joins: ``SELECT product_id, COUNT(*) FROM
  warranty_unit GROUP BY product_id`` and ``SELECT product_id, COUNT(*) FROM warranty_claim
  WHERE state <> 'rejected' GROUP BY product_id`` (for batches: grouped by product and
  batch, claims joined to their unit).

It prints the medians and the ratio subject / reference (target: at most 1.5), and the time
to open one claim that crosses an alert threshold, alert included, in one transaction.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crmkit.app import Crm
from crmkit.db import utcnow
from crmkit.migrate import upgrade
from crmkit.models import Customer
from crmkit.testing import make_config, reset_database
from sqlalchemy import Engine, create_engine, func, insert, select

from crmkit_warranty import analytics, claims
from crmkit_warranty.models import WarrantyClaim, WarrantyProduct, WarrantyUnit
from crmkit_warranty.units import register_unit

U, C, P = WarrantyUnit.__table__, WarrantyClaim.__table__, WarrantyProduct.__table__


def build(url: str, root: Path) -> Crm:
    config = make_config(url, root, {"plugins": {"enabled": ["warranty"]}, "plugin": {
        "warranty": {"alerts": [{"name": "bench", "scope": "batch", "rate_percent": 50,
                                 "within_days": 3650, "min_units": 1}]}}})
    crm = Crm(config)
    upgrade(crm)
    return crm


def fill(engine: Engine, units: int, n_claims: int, chunk: int = 50_000) -> None:
    rng = random.Random(7)
    now = utcnow()
    today = now.date()
    with engine.begin() as conn:
        conn.execute(insert(Customer.__table__), [
            {"kind": "person", "name": f"C{i}", "roles": [], "status": "active",
             "addresses": [], "attributes": {}, "created_at": now, "updated_at": now,
             "version": 1} for i in range(1000)])
        customer_ids = list(conn.scalars(select(Customer.__table__.c.id)))
        conn.execute(insert(P), [
            {"sku": f"P-{i:03d}", "name": f"Product {i}", "product_line": f"line-{i % 20}",
             "warranty_months": 24, "extended_months": 12, "created_at": now,
             "updated_at": now} for i in range(200)])
        product_ids = list(conn.scalars(select(P.c.id).order_by(P.c.id)))
    started = time.perf_counter()
    for offset in range(0, units, chunk):
        rows = []
        for n in range(offset, min(units, offset + chunk)):
            bought = today - dt.timedelta(days=(n * 7) % 730)
            rows.append({
                "product_id": product_ids[n % 200], "serial": f"S{n:08d}",
                "customer_id": customer_ids[n % len(customer_ids)], "purchase_date": bought,
                "purchase_month": bought.strftime("%Y-%m"), "batch": f"L{n // 100_000}-{n % 200}",
                "extended": False, "warranty_start": bought,
                "warranty_end": bought + dt.timedelta(days=730), "extended_end": None,
                "created_at": now})
        with engine.begin() as conn:
            conn.execute(insert(U), rows)
        print(f"  units {min(units, offset + chunk):>9,} ({time.perf_counter() - started:.0f}s)",
              file=sys.stderr)
    with engine.begin() as conn:
        picked = rng.sample(range(1, units + 1), n_claims)
        unit_rows = {r.id: r for r in conn.execute(
            select(U.c.id, U.c.product_id, U.c.customer_id, U.c.purchase_date))}
        rows = []
        for i, unit_id in enumerate(picked):
            unit = unit_rows[unit_id]
            opened = now - dt.timedelta(days=rng.randrange(0, 365))
            rows.append({
                "unit_id": unit_id, "product_id": unit.product_id,
                "customer_id": unit.customer_id, "defect_code": rng.choice(
                    ["no_power", "display", "noise", "leak", "firmware"]),
                "description": "bench", "channel": "phone", "entitlement": "in_warranty",
                "state": "rejected" if i % 20 == 0 else "closed", "opened_at": opened,
                "opened_month": opened.strftime("%Y-%m"),
                "days_since_purchase": max(0, (opened.date() - unit.purchase_date).days),
                "triage_due_at": opened, "resolution_due_at": opened,
                "triage_breached": False, "resolution_breached": False,
                "resolution_seconds": rng.randrange(3600, 30 * 86400)})
        for offset in range(0, len(rows), chunk):
            conn.execute(insert(C), rows[offset:offset + chunk])
    print(f"  claims {n_claims:,} ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    # Fresh statistics, as autovacuum / InnoDB would have after a real load.
    with engine.begin() as conn:
        for table in ("warranty_unit", "warranty_claim", "warranty_product"):
            conn.exec_driver_sql(f"ANALYZE TABLE {table}" if engine.dialect.name == "mysql"
                                 else f"ANALYZE {table}")


def reference(engine: Engine, by: str) -> Callable[[], Any]:
    if by == "product":
        queries = [select(U.c.product_id, func.count()).group_by(U.c.product_id),
                   select(C.c.product_id, func.count()).where(C.c.state != "rejected")
                   .group_by(C.c.product_id)]
    else:
        queries = [select(U.c.product_id, U.c.batch, func.count())
                   .group_by(U.c.product_id, U.c.batch),
                   select(U.c.product_id, U.c.batch, func.count()).select_from(
                       C.join(U, U.c.id == C.c.unit_id)).where(C.c.state != "rejected")
                   .group_by(U.c.product_id, U.c.batch)]

    def run() -> Any:
        with engine.connect() as conn:
            return [conn.execute(q).all() for q in queries]
    return run


def subject(crm: Crm, by: str) -> Callable[[], Any]:
    def run() -> Any:
        with crm.session() as session:
            return analytics.defect_report(session, by)
    return run


def timed(calls: dict[str, Callable[[], Any]], samples: int) -> dict[str, float]:
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(samples):
        for name in (list(calls) if i % 2 == 0 else list(reversed(calls))):
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="A server database to use (it is emptied first).")
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--claims", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/bench.db"
        if args.url:
            reset_database(url)
        crm = build(url, Path(tmp))
        print(f"filling {url.split('@')[-1]} with {args.units:,} units and "
              f"{args.claims:,} claims", file=sys.stderr)
        fill(crm.engine, args.units, args.claims)
        plain = create_engine(url)
        print(f"\ndefect report, {args.units:,} units, {args.claims:,} claims, "
              f"{crm.engine.dialect.name}, median of {args.samples}")
        for by in ("product", "batch"):
            result = timed({"subject": subject(crm, by), "reference": reference(plain, by)},
                           args.samples)
            print(f"  --by {by:<8} report {result['subject'] * 1000:8.1f} ms   bare aggregate "
                  f"{result['reference'] * 1000:8.1f} ms   ratio "
                  f"{result['subject'] / result['reference']:.2f} (target <= 1.5)")
        with crm.session() as session:
            sku = session.scalar(select(P.c.sku).limit(1))
        # New lots of one unit each: a lot's first claim takes it from 0% to 100% (rule: 50%).
        took, alerts = [], 0
        with crm.transaction() as tx:
            person = tx.customers.create(kind="person", name="Bench")
            for i in range(args.samples):
                register_unit(tx, sku=sku, serial=f"BENCH-{i}", customer_id=person.id,
                              purchase_date=utcnow().date(), batch=f"BENCH-LOT-{i}")
        for i in range(args.samples):
            start = time.perf_counter()
            with crm.transaction() as tx:
                claims.open_claim(tx, sku=sku, serial=f"BENCH-{i}", defect_code="leak",
                                  description="bench", channel="phone")
                alerts += sum(1 for e in tx._pending_events
                              if e.name == "warranty.defect_threshold_crossed")
            took.append(time.perf_counter() - start)
        print(f"  open a claim that crosses a threshold (commit included): median "
              f"{statistics.median(took) * 1000:.1f} ms; alert events committed with the "
              f"claims: {alerts} of {args.samples}")
        plain.dispose()
        crm.close()


if __name__ == "__main__":
    main()
