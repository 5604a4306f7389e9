"""A customer's timeline at a million interactions, against a bare indexed SELECT.

The database is built with the kernel's own migrations, then filled with ``rows``
interactions (1,000,000 by default) spread over ``rows / 100`` customers, so a typical
customer has about a hundred; one *heavy* customer gets 5,000 of them, interleaved in time
with everyone else's as real traffic would be.

For a typical and for the heavy customer it times, interleaved:

* **subject** — what an application does to show the latest 50 entries::

      with crm.transaction() as tx:
          tx.interactions.timeline(customer_id, limit=50)

* **reference** — the bare indexed query on a plain SQLAlchemy engine (no crmkit engine
  set-up, no ORM, no unit of work), returning the same rows with the same column types::

      with engine.connect() as conn:
          conn.execute(select(interaction).where(interaction.c.customer_id == customer_id)
                       .order_by(occurred_at.desc(), id.desc()).limit(50)).all()

Each sample is one call, timed on its own, with the cache warm; the median and the 95th
percentile of both are reported. The issue sets no target for the ratio: it is reported.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import Dialect, make_url

from benchmarks.report import Log, Result
from benchmarks.timing import interleaved_calls, median, percentile
from crmkit.app import Crm
from crmkit.db import utcnow
from crmkit.migrate import upgrade
from crmkit.models import Customer, Interaction
from crmkit.testing import make_config, reset_database

__all__ = ["DEFAULT_POSTGRES_URL", "TimelineSettings", "postgres_reachable", "run_postgres",
           "run_sqlite"]

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1/crmkit_bench"
TIMELINE_INDEX = "ix_interaction_timeline"
PAGE = 50
START = "2020-01-01 00:00:00"  # occurred_at of interaction n is START + n minutes
CHANNELS = ("phone", "email", "meeting", "visit", "web", "chat")
KINDS = ("purchase", "inquiry", "support", "complaint", "feedback", "note", "offer")

INTERACTIONS = Interaction.__table__


@attrs.frozen
class TimelineSettings:
    """Size of the data set and how many samples to time.

    :param rows: interactions in the database.
    :param heavy_rows: interactions of the heavy customer (at most a quarter of ``rows``).
    :param rows_per_customer: interactions per typical customer, on average.
    :param chunk: interactions per ``INSERT ... SELECT`` (one progress line each).
    :param samples: timed calls of each candidate, per customer.
    :param warmup: untimed calls of each candidate first.
    """

    rows: int = 1_000_000
    heavy_rows: int = 5_000
    rows_per_customer: int = 100
    chunk: int = 100_000
    samples: int = 300
    warmup: int = 30


@attrs.frozen
class Layout:
    """Which interaction goes to which customer.

    Interaction ``n`` (1-based) belongs to the heavy customer when ``n % heavy_step == 0``,
    otherwise to regular customer ``first_regular + n % regular_count``.
    """

    rows: int
    customers: int
    heavy_step: int
    heavy_id: int = 1
    first_regular: int = 2

    @property
    def regular_count(self) -> int:
        return self.customers - 1

    @property
    def typical_id(self) -> int:
        return self.first_regular + self.regular_count // 2

    @classmethod
    def plan(cls, settings: TimelineSettings) -> Layout:
        heavy = max(1, min(settings.heavy_rows, settings.rows // 4))
        customers = max(2, settings.rows // settings.rows_per_customer)
        return cls(rows=settings.rows, customers=customers,
                   heavy_step=max(1, settings.rows // heavy))


@attrs.frozen
class Dataset:
    """The loaded database: the two customers whose timelines are timed."""

    layout: Layout
    typical_rows: int
    heavy_rows: int
    load_seconds: float


# -- loading --------------------------------------------------------------------------------


def customer_batches(layout: Layout, size: int = 10_000) -> Iterator[list[dict[str, Any]]]:
    """Customer rows with explicit ids ``1..customers``, ``size`` at a time."""
    now = utcnow()
    for start in range(1, layout.customers + 1, size):
        yield [
            {
                "id": i, "kind": "organization" if i % 3 else "person",
                "name": f"Benchmark customer {i:07d}", "roles": ["customer"],
                "status": "active", "email": f"customer{i}@example.com", "phone": None,
                "addresses": [], "owner": None, "attributes": {}, "created_at": now,
                "updated_at": now, "version": 1,
            }
            for i in range(start, min(start + size, layout.customers + 1))
        ]


def _cycle(index: str, values: tuple[str, ...]) -> str:
    """SQL choosing ``values[index % len(values)]``, portable across backends."""
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"CASE ({index}) % {len(values)} {whens} END"


def cent_literal(dialect: Dialect) -> str:
    """0.01 as the kernel's ``amount`` column stores it on ``dialect`` (as an SQL literal).

    Asking the column's own type keeps the generated rows right whatever that type does,
    e.g. an exact integer count of ten-thousandths on SQLite instead of a REAL.
    """
    cent = Decimal("0.01")
    processor = INTERACTIONS.c.amount.type.dialect_impl(dialect).bind_processor(dialect)
    stored = processor(cent) if processor is not None else cent
    if not isinstance(stored, (int, float, Decimal)) or isinstance(stored, bool):
        raise TypeError(f"cannot generate amounts stored as {stored!r}")
    return str(stored)


def interaction_insert(dialect: Dialect, layout: Layout, first: int, last: int) -> str:
    """``INSERT ... SELECT`` generating interactions ``first..last`` inside the database.

    PostgreSQL numbers them with ``generate_series``, SQLite with a recursive CTE. Times are
    written in each backend's native form for the kernel's ``UTCDateTime`` (on SQLite, the
    text SQLAlchemy itself writes), so the ORM reads them back like any other row.
    """
    first, last = int(first), int(last)
    kind = "(g / 7)"
    is_purchase = f"{kind} % {len(KINDS)} = {KINDS.index('purchase')}"
    if dialect.name == "postgresql":
        prefix = ""
        source = f"generate_series({first}, {last}) AS s(g)"
        when = f"TIMESTAMP '{START}' + g * INTERVAL '1 minute'"
        payload = """CAST('{"seq": ' || g || ', "source": "benchmark"}' AS JSONB)"""
    elif dialect.name == "sqlite":
        prefix = (f"WITH RECURSIVE s(g) AS (SELECT {first} UNION ALL "
                  f"SELECT g + 1 FROM s WHERE g < {last}) ")
        source = "s"
        when = f"strftime('%Y-%m-%d %H:%M:%S', '{START}', '+' || g || ' minutes') || '.000000'"
        payload = """'{"seq": ' || g || ', "source": "benchmark"}'"""
    else:
        raise ValueError(f"no bulk loader for {dialect.name!r}")
    customer = (f"CASE WHEN g % {layout.heavy_step} = 0 THEN {layout.heavy_id} "
                f"ELSE {layout.first_regular} + g % {layout.regular_count} END")
    return (
        f"{prefix}INSERT INTO interaction (customer_id, channel, direction, kind, occurred_at,"
        " summary, payload, actor, amount, currency, created_at) "
        f"SELECT {customer}, {_cycle('g', CHANNELS)}, "
        "CASE WHEN g % 3 = 0 THEN 'outbound' ELSE 'inbound' END, "
        f"{_cycle(kind, KINDS)}, {when}, "
        "'Benchmark interaction ' || g || ': the customer asked about an order and was "
        "called back.', "
        f"{payload}, 'benchmark', "
        f"CASE WHEN {is_purchase} THEN (g % 100000) * {cent_literal(dialect)} END, "
        f"CASE WHEN {is_purchase} THEN 'EUR' END, {when} "
        f"FROM {source}"
    )


def load_customers(engine: Engine, layout: Layout) -> None:
    """Insert the customers with Core ``executemany`` and move the id sequence past them."""
    with engine.begin() as conn:
        for batch in customer_batches(layout):
            conn.execute(insert(Customer), batch)
        if conn.dialect.name == "postgresql":
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('customer', 'id'), {layout.customers:d})"
            ))


def load_interactions(engine: Engine, layout: Layout, chunk: int, log: Log, label: str) -> None:
    """Generate the interactions in the database, ``chunk`` per transaction."""
    started = time.perf_counter()
    for first in range(1, layout.rows + 1, chunk):
        last = min(first + chunk - 1, layout.rows)
        with engine.begin() as conn:
            conn.execute(text(interaction_insert(conn.dialect, layout, first, last)))
        elapsed = time.perf_counter() - started
        log(f"{label}: {last:,} / {layout.rows:,} interactions loaded ({elapsed:.1f} s)")


def settle(engine: Engine) -> None:
    """Refresh planner statistics (and on SQLite fold the WAL back into the file)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE customer"))
            conn.execute(text("ANALYZE interaction"))
        else:
            conn.execute(text("ANALYZE"))
    if engine.dialect.name == "sqlite":
        # Outside any transaction: crmkit's SQLite engine opens each one with BEGIN
        # IMMEDIATE, and a checkpoint cannot run inside it.
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()


def check_generated_rows(engine: Engine) -> None:
    """Read the first generated interaction back through the kernel's column types.

    Interaction 1 is a purchase of 0.01 at ``START`` + 1 minute; if the SQL that generated
    it wrote a form the kernel's types do not read back, stop here rather than time it.
    """
    query = (select(INTERACTIONS.c.occurred_at, INTERACTIONS.c.amount, INTERACTIONS.c.kind)
             .order_by(INTERACTIONS.c.occurred_at).limit(1))
    with engine.connect() as conn:
        row = conn.execute(query).one()
    expected = (dt.datetime.fromisoformat(START).replace(tzinfo=dt.UTC)
                + dt.timedelta(minutes=1), Decimal("0.01"), "purchase")
    if tuple(row) != expected:
        raise RuntimeError(f"generated rows read back as {tuple(row)!r}, not {expected!r}; "
                           "update the generator in benchmarks/timeline.py to the schema")


def count_rows(engine: Engine, customer_id: int) -> int:
    query = select(func.count()).where(INTERACTIONS.c.customer_id == customer_id)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def build(crm: Crm, settings: TimelineSettings, log: Log, label: str) -> Dataset:
    """Migrate the (empty) database to head and fill it; report how long the load took."""
    layout = Layout.plan(settings)
    upgrade(crm)
    started = time.perf_counter()
    log(f"{label}: loading {layout.customers:,} customers")
    load_customers(crm.engine, layout)
    load_interactions(crm.engine, layout, settings.chunk, log, label)
    check_generated_rows(crm.engine)
    log(f"{label}: analyzing")
    settle(crm.engine)
    seconds = time.perf_counter() - started
    return Dataset(layout, count_rows(crm.engine, layout.typical_id),
                   count_rows(crm.engine, layout.heavy_id), seconds)


# -- timing ---------------------------------------------------------------------------------


def bare_timeline(customer_id: int) -> Any:
    """The reference query: the latest ``PAGE`` rows of one customer, on the index."""
    return (
        select(INTERACTIONS)
        .where(INTERACTIONS.c.customer_id == customer_id)
        .order_by(INTERACTIONS.c.occurred_at.desc(), INTERACTIONS.c.id.desc())
        .limit(PAGE)
    )


def kernel_call(crm: Crm, customer_id: int) -> Callable[[], list[Any]]:
    """The subject: a unit of work reading the timeline through the repository."""

    def call() -> list[Any]:
        with crm.transaction() as tx:
            return tx.interactions.timeline(customer_id, limit=PAGE)

    return call


def bare_call(engine: Engine, customer_id: int) -> Callable[[], list[Any]]:
    """The reference: the bare Core query on a connection, all rows fetched."""
    query = bare_timeline(customer_id)

    def call() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(query).all())

    return call


def query_plan(engine: Engine, customer_id: int) -> str:
    """The backend's plan for the reference query, one line per step."""
    sql = str(bare_timeline(customer_id).compile(engine, compile_kwargs={"literal_binds": True}))
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(explain + sql).all()
    steps = (re.sub(r"\s*\(cost=.*?\)", "", str(row[-1])).strip() for row in rows)
    return " | ".join(step for step in steps if step)


def check_same_rows(subject: Callable[[], list[Any]], reference: Callable[[], list[Any]],
                    expected: int) -> None:
    """Refuse to time two calls that do not return the same page of the timeline."""
    mine = [row.id for row in subject()]
    theirs = [row.id for row in reference()]
    if mine != theirs or len(mine) != expected:
        raise RuntimeError(
            f"the kernel's timeline and the bare query disagree ({len(mine)} rows vs "
            f"{len(theirs)}, expected {expected}); the benchmark would compare different work"
        )


def time_customer(crm: Crm, engine: Engine, customer_id: int, rows: int,
                  settings: TimelineSettings) -> dict[str, list[float]]:
    """Seconds per call of the kernel's timeline and of the bare query, interleaved."""
    subject, reference = kernel_call(crm, customer_id), bare_call(engine, customer_id)
    check_same_rows(subject, reference, min(PAGE, rows))
    return interleaved_calls({"subject": subject, "reference": reference},
                             samples=settings.samples, warmup=settings.warmup)


def customer_results(name: str, timings: dict[str, list[float]], note: str) -> list[Result]:
    """A median and a p95 :class:`Result` for one customer's timeline."""
    subject, reference = timings["subject"], timings["reference"]
    return [
        Result(name, median(subject), median(reference), "median", None, note),
        Result(name, percentile(subject, 0.95), percentile(reference, 0.95), "p95"),
    ]


def measure(crm: Crm, dataset: Dataset, settings: TimelineSettings, log: Log,
            label: str) -> list[Result]:
    """Time the typical and the heavy customer on ``crm``'s database."""
    engine = create_engine(crm.config.database_url)
    try:
        results: list[Result] = []
        for who, customer_id, rows in (
            ("typical", dataset.layout.typical_id, dataset.typical_rows),
            ("heavy", dataset.layout.heavy_id, dataset.heavy_rows),
        ):
            plan = query_plan(engine, customer_id)
            if TIMELINE_INDEX not in plan:
                log(f"{label}: WARNING, the bare query does not use {TIMELINE_INDEX}: {plan}")
            log(f"{label}: timing the {who} customer's timeline ({settings.samples} samples)")
            timings = time_customer(crm, engine, customer_id, rows, settings)
            note = (f"customer {customer_id} has {rows:,} of {dataset.layout.rows:,} "
                    f"interactions; plan: {plan}")
            name = f"timeline latest {PAGE}, {label}, {who} customer ({rows:,} rows)"
            results += customer_results(name, timings, note)
        return results
    finally:
        engine.dispose()


# -- one backend ----------------------------------------------------------------------------


def run_backend(url: str, root: Path, settings: TimelineSettings, log: Log,
                label: str) -> list[Result]:
    """Build the database at ``url`` (already empty) and time both customers on it."""
    crm = Crm(make_config(url, root), discover_plugins=False)
    try:
        dataset = build(crm, settings, log, label)
        log(f"{label}: loaded {dataset.layout.rows:,} interactions in "
            f"{dataset.load_seconds:.1f} s")
        return measure(crm, dataset, settings, log, label)
    finally:
        crm.close()


def run_sqlite(settings: TimelineSettings, log: Log) -> list[Result]:
    """The timeline benchmark on a fresh SQLite file in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="crmkit-bench-") as tmp:
        root = Path(tmp)
        return run_backend(f"sqlite:///{root / 'bench.db'}", root, settings, log, "sqlite")


def postgres_reachable(url: str) -> str | None:
    """``None`` if ``url`` accepts a connection, otherwise why not."""
    connect_args = {"connect_timeout": 5} if make_url(url).get_backend_name() == "postgresql" \
        else {}
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means: skip this backend, say why
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    finally:
        engine.dispose()
    return None


def run_postgres(url: str, settings: TimelineSettings, log: Log) -> list[Result]:
    """The timeline benchmark on ``url``, after dropping every crmkit table there."""
    log("postgresql: dropping crmkit tables for a fresh load")
    reset_database(url)
    with tempfile.TemporaryDirectory(prefix="crmkit-bench-") as tmp:
        return run_backend(url, Path(tmp), settings, log, "postgresql")
