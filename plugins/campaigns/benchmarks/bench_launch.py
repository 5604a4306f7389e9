"""Launch benchmark: a campaign over a segment of 100,000 of 1,000,000 customers.

Run from the repository root (it drops every table in the target database first)::

    .venv/bin/python plugins/campaigns/benchmarks/bench_launch.py
    .venv/bin/python plugins/campaigns/benchmarks/bench_launch.py --customers 200000 --sqlite

The database is built with the kernel's and the plugin's migrations, then filled inside
the database with ``INSERT ... SELECT`` (``generate_series`` on PostgreSQL, a recursive CTE
on SQLite): ``--customers`` customers, every tenth tagged ``winter`` (the segment, 10%),
and, so that the launch's NOT EXISTS checks have rows to look at, 1% of the customers
opted out of e-mail and 1% on a suppression list (none of them in the segment, so subject
and reference select the same rows; the benchmark checks that they do).

Timed, interleaved (subject and reference take turns, the order alternating per round,
members deleted between runs, outside the timing), each in its own committed transaction:

* **subject**: :func:`crmkit_campaigns.launch.materialise`, what a launch runs to add the
  members: segment criteria, minus opt-outs, suppression lists, archived customers and
  existing members, with the control-group/variant split, in one ``INSERT ... SELECT``;
* **reference**: a bare ``INSERT INTO campaigns_member ... SELECT`` of the same customers,
  the segment's compiled criteria as the only condition and constants for the rest;
* **full launch** (informational): :func:`crmkit_campaigns.launch.run`, which also queues
  one outbox event and logs one interaction per member and marks them sent.

The medians are compared (target for the subject: at most 1.5x the reference).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from crmkit import Crm
from crmkit.db import UTCDateTime, utcnow
from crmkit.migrate import upgrade
from crmkit.models import Customer, Interaction, OutboxEvent
from crmkit.testing import make_config, reset_database
from sqlalchemy import Integer, String, delete, func, insert, literal, select, text

import crmkit_campaigns
from crmkit_campaigns import campaigns, launch, segments
from crmkit_campaigns.models import Member

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/crmkit_bench"
SEGMENT = {"field": "customer.tags", "op": "contains", "value": "winter"}


def series(dialect: str, count: int) -> str:
    """A row source numbering ``g`` from 1 to ``count``."""
    if dialect == "postgresql":
        return f"generate_series(1, {count}) AS s(g)"
    return (f"(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < "
            f"{count}) SELECT g FROM s)")


def load(crm: Crm, customers: int, log: Callable[[str], None]) -> None:
    """Fill the database inside itself: customers, tags, consent, suppressions."""
    dialect = crm.engine.dialect.name
    empty_list, empty_object = ("'[]'::jsonb", "'{}'::jsonb") if dialect == "postgresql" \
        else ("'[]'", "'{}'")
    now = "now()" if dialect == "postgresql" else "'2026-11-25 00:00:00.000000'"
    start = time.perf_counter()
    with crm.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO customer (id, kind, name, roles, status, addresses, attributes, "
            "created_at, updated_at, version) "
            f"SELECT g, 'person', 'Customer ' || g, {empty_list}, 'active', {empty_list}, "
            f"{empty_object}, {now}, {now}, 1 FROM {series(dialect, customers)}"))
        conn.execute(text("INSERT INTO customer_tag (customer_id, tag) "
                          "SELECT id, 'winter' FROM customer WHERE id % 10 = 0"))
        conn.execute(text("INSERT INTO campaigns_consent (customer_id, channel, opted_in, "
                          f"changed_at) SELECT id, 'email', false, {now} FROM customer "
                          "WHERE id % 100 = 1"))
        conn.execute(text("INSERT INTO campaigns_suppression (list_name, customer_id, "
                          f"added_at) SELECT 'default', id, {now} FROM customer "
                          "WHERE id % 100 = 3"))
        if dialect == "postgresql":
            conn.execute(text("SELECT setval(pg_get_serial_sequence('customer', 'id'), "
                              f"{customers})"))
    with crm.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE" if dialect != "sqlite" else "ANALYZE"))
    log(f"loaded {customers:,} customers in {time.perf_counter() - start:.1f} s")


def setup(crm: Crm) -> tuple[int, int]:
    """The segment and two campaigns: the subject's and the reference's."""
    with crm.transaction(actor="bench") as tx:
        segments.add(tx, "winter", SEGMENT)
        subject = campaigns.add(tx, code="SUBJECT", name="Subject", channel="email",
                                segments=["winter"], control_percent=10, variants=["A", "B"])
        reference = campaigns.add(tx, code="REFERENCE", name="Reference", channel="email",
                                  segments=["winter"])
        return subject.id, reference.id


def reference_statement(crm: Crm, campaign_id: int):  # type: ignore[no-untyped-def]
    """The bare INSERT ... SELECT of the segment's customers."""
    now = utcnow()
    source = select(literal(campaign_id, Integer), Customer.id, literal("A", String),
                    literal(1, Integer), literal("targeted", String),
                    literal(now, UTCDateTime)).where(crm.criteria(SEGMENT).to_sql(now))
    return insert(Member).from_select(
        ["campaign_id", "customer_id", "variant", "launch", "status", "targeted_at"], source)


def clean(crm: Crm) -> None:
    with crm.engine.begin() as conn:
        conn.execute(delete(Member))
        conn.execute(delete(OutboxEvent).where(OutboxEvent.name == "campaigns.send"))
        conn.execute(delete(Interaction).where(Interaction.kind == "marketing"))


def members_of(crm: Crm, campaign_id: int) -> set[int]:
    with crm.engine.connect() as conn:
        return set(conn.scalars(select(Member.customer_id)
                                .where(Member.campaign_id == campaign_id)))


def run(crm: Crm, rounds: int, full_rounds: int, log: Callable[[str], None]) -> None:
    subject_id, reference_id = setup(crm)

    def subject() -> None:
        with crm.transaction(actor="bench") as tx:
            campaign = campaigns.get(tx.session, subject_id)
            launch.materialise(tx, campaign, 1, utcnow())

    def reference() -> None:
        with crm.engine.begin() as conn:
            conn.execute(reference_statement(crm, reference_id))

    def full() -> None:
        with crm.transaction(actor="bench") as tx:
            launch.run(tx, campaigns.get(tx.session, subject_id))

    subject(), reference()
    got, want = members_of(crm, subject_id), members_of(crm, reference_id)
    if got != want:
        sys.exit(f"subject and reference differ: {len(got)} vs {len(want)} rows")
    log(f"same {len(got):,} members from subject and reference")
    clean(crm)
    timings: dict[str, list[float]] = {"subject": [], "reference": [], "full": []}
    for i in range(rounds):
        order = [("subject", subject), ("reference", reference)]
        for name, call in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - start)
            clean(crm)
    for _ in range(full_rounds):
        start = time.perf_counter()
        full()
        timings["full"].append(time.perf_counter() - start)
        clean(crm)
    ref = statistics.median(timings["reference"])
    rows = [("reference: bare INSERT ... SELECT", ref),
            ("subject: launch.materialise", statistics.median(timings["subject"]))]
    if timings["full"]:
        rows.append(("full launch (members + outbox + interactions)",
                     statistics.median(timings["full"])))
    print(f"\n{'benchmark':48} {'median':>10} {'ratio':>7}")
    for name, value in rows:
        print(f"{name:48} {value * 1000:8.0f} ms {value / ref:6.2f}x")
    ratio = rows[1][1] / ref
    print(f"\nmaterialisation vs bare INSERT ... SELECT: {ratio:.2f}x "
          f"({'within' if ratio <= 1.5 else 'OVER'} the 1.5x target); "
          f"{len(want):,} members, {rounds} rounds")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--full-rounds", type=int, default=3)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="the database to use; EVERY TABLE IN IT IS DROPPED")
    parser.add_argument("--sqlite", action="store_true",
                        help="use a temporary SQLite file instead of PostgreSQL")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    root = Path(tempfile.mkdtemp(prefix="crmkit-campaigns-bench-"))
    url = f"sqlite:///{root / 'bench.db'}" if args.sqlite else args.postgres_url
    if not args.sqlite:
        reset_database(url)
    crm = Crm(make_config(url, root), plugins={"campaigns": crmkit_campaigns},
              discover_plugins=False)
    try:
        upgrade(crm)
        log(f"{crm.engine.dialect.name}: {url}")
        load(crm, args.customers, log)
        with crm.engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(Customer))
        log(f"{total:,} customers")
        run(crm, args.rounds, args.full_rounds, log)
    finally:
        crm.close()


if __name__ == "__main__":
    main()
