"""A segment over 100,000 customers and 1,000,000 interactions: compiled criteria against
a hand-written query for the same condition.

The database is built with the kernel's own migrations (its indexes, nothing added), then
filled inside the database with ``INSERT ... SELECT``: ``customers`` customers (100,000 by
default) with kinds, statuses, roles, JSON addresses in a dozen countries, attributes and
tags in ``customer_tag``, and ``interactions`` interactions (1,000,000 by default) of kinds
purchase, complaint and note spread evenly over the two years before :data:`NOW`. Who
gets an interaction is skewed, as in real traffic: a long tail of customers with one or two
interactions or none, a few with over a hundred. Every value comes from a multiplicative
hash of the row number, in integer arithmetic both backends evaluate alike, so SQLite and
PostgreSQL hold the same data set.

The segment (:data:`SEGMENT`): organizations, not archived, with an address in LV or LT,
at least one purchase in the last 90 days, at most one complaint ever, not tagged
``blocked``. Timed, interleaved, on the kernel's engine (``crm.engine``):

* **subject** — the compiled criteria, as an application evaluates a segment::

      criteria = crm.criteria(SEGMENT)
      conn.execute(select(Customer.id).where(criteria.to_sql(NOW))).scalars().all()

* **reference** — the same condition written by hand in SQLAlchemy Core, in the fastest
  natural form found (see :func:`reference_query`)::

      conn.execute(reference_query(conn.dialect, NOW)).scalars().all()

Before timing, both must return the same set of ids, and Python evaluation
(``Criteria.evaluate``) must agree with it on a sample of customers loaded through the
ORM. Each sample is one query, all ids fetched; the medians are compared. Target: at most
1.2x (issue 3).

A third candidate, **proposed**, is timed beside them: the same document compiled by
:class:`ProposedCriteria`, the kernel's compilation plus the one suggestion not yet in it
(on SQLite, one ``json_each`` pass for an ``any`` of ``contains``). It is not the kernel:
its row says what that change would give, against the same reference.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    event,
    exists,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from benchmarks.report import Log, Result, format_duration
from benchmarks.timeline import cent_literal
from benchmarks.timeline import settle as timeline_settle
from benchmarks.timing import interleaved_calls, median
from crmkit.app import Crm
from crmkit.criteria import Criteria, CustomerRecord, parse_duration
from crmkit.migrate import upgrade
from crmkit.models import Customer, CustomerTag, Interaction
from crmkit.testing import make_config, reset_database

__all__ = ["CriteriaSettings", "run_postgres", "run_sqlite"]

TARGET = 1.2

#: "Now" for the data set and the queries: interactions fill the two years before it.
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SPAN_DAYS = 730
START = NOW - dt.timedelta(days=SPAN_DAYS)

#: The segment timed: organizations, not archived, in LV or LT, at least one purchase in
#: the last 90 days, at most one complaint ever, not tagged "blocked".
SEGMENT: dict[str, Any] = {"all": [
    {"field": "customer.kind", "op": "eq", "value": "organization"},
    {"field": "customer.status", "op": "ne", "value": "archived"},
    {"any": [
        {"field": "customer.countries", "op": "contains", "value": "LV"},
        {"field": "customer.countries", "op": "contains", "value": "LT"},
    ]},
    {"interactions": {"kind": "purchase", "within": "P90D"}, "op": "gte", "value": 1},
    {"interactions": {"kind": "complaint"}, "op": "lte", "value": 1},
    {"not": {"field": "customer.tags", "op": "contains", "value": "blocked"}},
]}
RECENT = "P90D"
COUNTRIES = ("LV", "LT")

CUSTOMERS = Customer.__table__
INTERACTIONS = Interaction.__table__
TAGS = CustomerTag.__table__


@attrs.frozen
class CriteriaSettings:
    """Size of the data set and how many queries to time.

    :param customers: customers in the database.
    :param interactions: interactions in the database.
    :param chunk: rows per ``INSERT ... SELECT`` (one progress line each).
    :param samples: timed queries of each candidate.
    :param warmup: untimed queries of each candidate first.
    :param check_sample: customers whose Python evaluation is checked against SQL.
    """

    customers: int = 100_000
    interactions: int = 1_000_000
    chunk: int = 100_000
    samples: int = 15
    warmup: int = 2
    check_sample: int = 400


@attrs.frozen
class Dataset:
    """The loaded database and how long loading took."""

    customers: int
    interactions: int
    load_seconds: float


# -- generating rows ------------------------------------------------------------------------

#: Odd 32-bit multipliers (Knuth's and xxHash's constants): ``x * m mod 2**32`` for
#: consecutive ``x`` is spread evenly over 32 bits, each multiplier a different sequence.
MULTIPLIERS = {
    "kind": 2654435761, "status": 2246822519, "roles": 3266489917, "addresses": 668265263,
    "country": 374761393, "country2": 3432918353, "segment": 461845907, "created": 2869860233,
    "tag:blocked": 1540483477, "tag:vip": 3141592653, "tag:newsletter": 2718281829,
    "tag:partner": 1597334677, "who": 2654435769, "who2": 2246822507,
    "interaction kind": 3266489909, "when": 668265261, "amount": 374761397,
}
TWO_32 = 4294967296


def _hash(column: str, salt: str) -> str:
    """SQL for a 32-bit hash of the integer ``column``: 0 .. 2**32 - 1."""
    return f"({column} * {MULTIPLIERS[salt]} % {TWO_32})"


def _percent(column: str, salt: str) -> str:
    """SQL for a hash of ``column`` in 0..99 (its high bits, which are the well mixed ones)."""
    return f"({_hash(column, salt)} / 65536 % 100)"


def _pick(column: str, salt: str, weighted: tuple[tuple[str, int], ...]) -> str:
    """SQL choosing one of the SQL expressions in ``weighted`` with the given percentages."""
    if sum(weight for _, weight in weighted) != 100:
        raise ValueError("weights must add up to 100")
    percent, bound, whens = _percent(column, salt), 0, []
    for value, weight in weighted[:-1]:
        bound += weight
        whens.append(f"WHEN {percent} < {bound} THEN {value}")
    return f"CASE {' '.join(whens)} ELSE {weighted[-1][0]} END"


def _cycle(index: str, values: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"CASE ({index}) % {len(values)} {whens} END"


COUNTRY_WEIGHTS = (("'LV'", 12), ("'LT'", 10), ("'EE'", 10), ("'FI'", 10), ("'SE'", 10),
                   ("'DE'", 15), ("'PL'", 10), ("'NO'", 5), ("'DK'", 5), ("'GB'", 7),
                   ("'US'", 6))
CHANNELS = ("phone", "email", "meeting", "visit", "web", "chat")
#: Interaction kinds: 55% purchases, 10% complaints, 35% notes.
KIND_WEIGHTS = (("'purchase'", 55), ("'complaint'", 10), ("'note'", 35))
#: Tags and the share of customers carrying each.
TAG_SHARES = (("blocked", 3), ("vip", 5), ("newsletter", 35), ("partner", 8))


def _address(kind: str, country: str, i: str) -> str:
    """SQL text of one address object (``country`` is an SQL expression)."""
    return (f"""'{{"kind": "{kind}", "street": "' || ({i} % 97 + 1) || ' Benchmark iela", """
            f""""postal_code": "LV-' || (1000 + {i} % 9000) || '", "city": "City ' || """
            f"""({i} % 50) || '", "country": "' || {country} || '"}}'""")


def _series(dialect: Dialect, first: int, last: int, name: str) -> tuple[str, str]:
    """``(prefix, source)`` numbering rows ``first..last`` as column ``name`` (a BIGINT)."""
    first, last = int(first), int(last)
    if dialect.name == "postgresql":
        return "", (f"generate_series(CAST({first} AS BIGINT), CAST({last} AS BIGINT)) "
                    f"AS s({name})")
    if dialect.name == "sqlite":
        return (f"WITH RECURSIVE s({name}) AS (SELECT {first} UNION ALL "
                f"SELECT {name} + 1 FROM s WHERE {name} < {last}) "), "s"
    raise ValueError(f"no bulk loader for {dialect.name!r}")


def _time(dialect: Dialect, seconds: str) -> str:
    """SQL for :data:`START` plus ``seconds``, in the form the kernel's ``UTCDateTime``
    stores on ``dialect`` (on SQLite, the text SQLAlchemy itself writes)."""
    start = f"{START:%Y-%m-%d %H:%M:%S}"
    if dialect.name == "postgresql":
        return f"(TIMESTAMP '{start}' + {seconds} * INTERVAL '1 second')"
    return f"(strftime('%Y-%m-%d %H:%M:%S', '{start}', '+' || {seconds} || ' seconds') " \
           "|| '.000000')"


def _json(dialect: Dialect, sql_text: str) -> str:
    return f"CAST({sql_text} AS JSONB)" if dialect.name == "postgresql" else sql_text


def customer_insert(dialect: Dialect, first: int, last: int) -> str:
    """``INSERT ... SELECT`` generating customers ``first..last`` (ids equal to ``i``).

    40% organizations; statuses 10% prospect, 70% active, 12% inactive, 8% archived;
    8% without an address, 62% with one, 30% with a billing and a shipping address (whose
    country is drawn independently, so it may be the same).
    """
    prefix, source = _series(dialect, first, last, "i")
    i = "i"
    country1 = _pick(i, "country", COUNTRY_WEIGHTS)
    country2 = _pick(i, "country2", COUNTRY_WEIGHTS)
    one = _address("billing", country1, i)
    addresses = (f"CASE WHEN {_percent(i, 'addresses')} < 8 THEN '[]' "
                 f"WHEN {_percent(i, 'addresses')} < 70 THEN '[' || {one} || ']' "
                 f"ELSE '[' || {one} || ', ' || {_address('shipping', country2, i)} || ']' END")
    segment = _pick(i, "segment", (("'smb'", 70), ("'mid'", 22), ("'enterprise'", 8)))
    attributes = (f"""'{{"segment": "' || {segment} || '", "employees": ' || """
                  f"""(1 + {_hash(i, 'segment')} % 5000) || '}}'""")
    created = _time(dialect, f"({_hash(i, 'created')} * {SPAN_DAYS * 86400} / {TWO_32})")
    kind = _pick(i, "kind", (("'organization'", 40), ("'person'", 60)))
    return (
        f"{prefix}INSERT INTO customer (id, kind, name, roles, status, email, phone, addresses,"
        " owner, attributes, created_at, updated_at, version) "
        f"SELECT {i}, {kind}, 'Benchmark customer ' || {i}, "
        + _json(dialect, _pick(i, "roles", (("""'["customer"]'""", 75),
                                            ("""'["prospect"]'""", 17),
                                            ("""'["customer", "partner"]'""", 8)))) + ", "
        + _pick(i, "status", (("'prospect'", 10), ("'active'", 70), ("'inactive'", 12),
                              ("'archived'", 8))) + ", "
        f"'customer' || {i} || '@example.com', "
        f"CASE WHEN {i} % 4 = 0 THEN NULL ELSE '+371 2' || (1000000 + {i}) END, "
        f"{_json(dialect, addresses)}, 'rep' || ({i} % 25), {_json(dialect, attributes)}, "
        f"{created}, {created}, 1 FROM {source}"
    )


def tag_insert(first: int, last: int) -> str:
    """``INSERT ... SELECT`` tagging customers ``first..last`` (see :data:`TAG_SHARES`)."""
    parts = [
        f"SELECT id, '{tag}' FROM customer WHERE id BETWEEN {int(first)} AND {int(last)} "
        f"AND {_percent('id', 'tag:' + tag)} < {share}"
        for tag, share in TAG_SHARES
    ]
    return "INSERT INTO customer_tag (customer_id, tag) " + " UNION ALL ".join(parts)


def interaction_insert(dialect: Dialect, customers: int, first: int, last: int) -> str:
    """``INSERT ... SELECT`` generating interactions ``first..last``.

    The customer is ``1 + floor(customers * u * v)`` for two independent uniform ``u, v``
    (16 bits each): the product's density is ``-ln x``, a long tail of customers with few
    or no interactions and a head of customers with more than a hundred. Kinds follow
    :data:`KIND_WEIGHTS`; times are uniform over the :data:`SPAN_DAYS` before :data:`NOW`.
    """
    prefix, source = _series(dialect, first, last, "g")
    g = "g"
    customer = (f"1 + {_hash(g, 'who')} / 65536 * ({_hash(g, 'who2')} / 65536) "
                f"* {int(customers)} / {TWO_32}")
    kind = _pick(g, "interaction kind", KIND_WEIGHTS)
    when = _time(dialect, f"({_hash(g, 'when')} * {SPAN_DAYS * 86400} / {TWO_32})")
    is_purchase = f"{_percent(g, 'interaction kind')} < {KIND_WEIGHTS[0][1]}"
    payload = _json(dialect, """'{"seq": ' || g || ', "source": "benchmark"}'""")
    return (
        f"{prefix}INSERT INTO interaction (customer_id, channel, direction, kind, occurred_at,"
        " summary, payload, actor, amount, currency, created_at) "
        f"SELECT {customer}, {_cycle(g, CHANNELS)}, "
        f"CASE WHEN {_percent(g, 'interaction kind')} < 65 THEN 'inbound' ELSE 'outbound' END, "
        f"{kind}, {when}, "
        f"'Benchmark interaction ' || {g} || ': ' || {kind} || ' recorded by the benchmark.', "
        f"{payload}, 'benchmark', "
        f"CASE WHEN {is_purchase} THEN ({_hash(g, 'amount')} % 100000 + 1) "
        f"* {cent_literal(dialect)} END, "
        f"CASE WHEN {is_purchase} THEN 'EUR' END, {when} "
        f"FROM {source}"
    )


# -- loading --------------------------------------------------------------------------------


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(first, min(first + size - 1, total)) for first in range(1, total + 1, size)]


def load(engine: Engine, settings: CriteriaSettings, log: Log, label: str) -> None:
    """Generate customers, their tags and the interactions, ``chunk`` rows a transaction."""
    started = time.perf_counter()
    for first, last in _chunks(settings.customers, settings.chunk):
        with engine.begin() as conn:
            conn.execute(text(customer_insert(conn.dialect, first, last)))
            conn.execute(text(tag_insert(first, last)))
        log(f"{label}: {last:,} / {settings.customers:,} customers loaded "
            f"({time.perf_counter() - started:.1f} s)")
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('customer', 'id'), "
                              f"{int(settings.customers)})"))
    for first, last in _chunks(settings.interactions, settings.chunk):
        with engine.begin() as conn:
            conn.execute(text(interaction_insert(conn.dialect, settings.customers, first,
                                                 last)))
        log(f"{label}: {last:,} / {settings.interactions:,} interactions loaded "
            f"({time.perf_counter() - started:.1f} s)")


def build(crm: Crm, settings: CriteriaSettings, log: Log, label: str) -> Dataset:
    """Migrate the (empty) database to head and fill it; report how long the load took."""
    upgrade(crm)
    started = time.perf_counter()
    load(crm.engine, settings, log, label)
    log(f"{label}: analyzing")
    settle(crm.engine)
    return Dataset(settings.customers, settings.interactions, time.perf_counter() - started)


# -- the reference --------------------------------------------------------------------------


def _countries_sql(dialect: Dialect) -> ColumnElement[bool]:
    """An address of the customer is in one of :data:`COUNTRIES`, as one would write it."""
    c = CUSTOMERS.c
    if dialect.name == "postgresql":
        # JSONB containment, one test per country.
        addresses = type_coerce(c.addresses, postgresql.JSONB)
        return or_(*(addresses.contains([{"country": country}]) for country in COUNTRIES))
    # One pass over the array with json_each, one IN test per element.
    each = func.json_each(c.addresses).table_valued("value")
    return exists().select_from(each).where(
        func.json_extract(each.c.value, "$.country").in_(COUNTRIES))


def reference_query(dialect: Dialect, now: dt.datetime) -> Select[Any]:
    """The segment written by hand in SQLAlchemy Core, in the form fastest on ``dialect``.

    Four natural forms were timed on the full data set (2 cores, medians; see the README):
    correlated ``count(*)`` subqueries compared with 1; EXISTS for the recent purchase and
    ``NOT EXISTS (... OFFSET 1)`` ("there is no second complaint"); EXISTS plus ``id NOT IN``
    the customers with more than one complaint (``GROUP BY ... HAVING``); and one join of
    customer and interaction with ``GROUP BY customer.id HAVING count(*) FILTER ...``.

    * PostgreSQL: the join + GROUP BY, about twice as fast as any correlated form: one
      (parallel) sequential pass over ``interaction`` instead of an index probe and heap
      visits per customer, and a plan cheap enough that JIT compilation does not start.
    * SQLite: EXISTS / NOT EXISTS ... OFFSET 1 / NOT EXISTS, each stopping at the row that
      decides it; SQLite has no parallel scan or hash aggregate, and there the join +
      GROUP BY is the slowest form (NOT IN ... GROUP BY scans all of ``interaction``).
    """
    c, i, t = CUSTOMERS.c, INTERACTIONS.c, TAGS.c
    since = now - parse_duration(RECENT)
    blocked = exists().where(t.customer_id == c.id, t.tag == "blocked")
    customer_conditions = (c.kind == "organization", c.status != "archived",
                           _countries_sql(dialect), ~blocked)
    if dialect.name == "postgresql":
        recent_purchases = func.count().filter(i.kind == "purchase", i.occurred_at >= since)
        complaints = func.count().filter(i.kind == "complaint")
        # An inner join: a customer without interactions has no recent purchase.
        return (select(c.id)
                .join_from(CUSTOMERS, INTERACTIONS, i.customer_id == c.id)
                .where(*customer_conditions)
                .group_by(c.id)
                .having(recent_purchases >= 1, complaints <= 1))
    recent_purchase = exists().where(i.customer_id == c.id, i.kind == "purchase",
                                     i.occurred_at >= since)
    second_complaint = exists(select(i.id).where(i.customer_id == c.id, i.kind == "complaint")
                              .offset(1))
    return select(c.id).where(*customer_conditions, recent_purchase, ~second_complaint)


# -- the proposed compilation -----------------------------------------------------------------

#: SQLite: the string_list fields kept in JSON arrays, and the text compared in each item.
JSON_EACH_ITEM: dict[str, tuple[Any, Callable[[Any], Any]]] = {
    "customer.countries": (Customer.addresses,
                           lambda value: func.json_extract(value, "$.country")),
    "customer.roles": (Customer.roles, lambda value: value),
}


class ProposedCriteria(Criteria):
    """:class:`Criteria` with the one suggestion not yet in ``crmkit/criteria.py``.

    The kernel already compiles counts as EXISTS of the deciding row and, on PostgreSQL,
    one grouped join with bound JSONB documents (suggestions 1-3 of the README). What is
    left: on SQLite, an ``any`` of ``contains`` on one JSON list field (LV or LT) as one
    ``json_each`` pass with ``IN (...)`` instead of one pass per value.
    """

    def __init__(self, document: Mapping[str, Any], criteria: Criteria, dialect: Dialect
                 ) -> None:
        super().__init__(document, criteria.registry)
        self.dialect_name = dialect.name

    def _sql(self, node: Mapping[str, Any], now: dt.datetime) -> ColumnElement[bool]:
        merged = self._contains_any(node)
        return merged if merged is not None else super()._sql(node, now)

    def _contains_any(self, node: Mapping[str, Any]) -> ColumnElement[bool] | None:
        children = node.get("any") or []
        names = {child.get("field") for child in children}
        if (self.dialect_name != "sqlite" or len(children) < 2 or len(names) != 1
                or any(child.get("op") != "contains" for child in children)):
            return None
        found = JSON_EACH_ITEM.get(names.pop())
        if found is None:
            return None
        column, item = found
        each = func.json_each(column).table_valued("value")
        return exists().select_from(each).where(
            item(each.c.value).in_([child["value"] for child in children]))


# -- the candidates -------------------------------------------------------------------------

QueryMaker = Callable[[Dialect], Select[Any]]


def segment_query(criteria: Criteria, now: dt.datetime) -> Select[Any]:
    """What an application runs for a segment: every matching customer's id."""
    return select(Customer.id).where(criteria.to_sql(now))


def candidates(crm: Crm, dialect: Dialect) -> dict[str, QueryMaker]:
    """Each candidate: dialect → its query, built at every call as an application would."""
    compiled = crm.criteria(SEGMENT)
    proposed = ProposedCriteria(SEGMENT, compiled, dialect)
    return {
        "subject": lambda d: segment_query(compiled, NOW),
        "reference": lambda d: reference_query(d, NOW),
        "proposed": lambda d: segment_query(proposed, NOW),
    }


def id_call(engine: Engine, make: QueryMaker) -> Callable[[], list[int]]:
    """One sample: build the query, run it on a pooled connection, fetch every id."""

    def call() -> list[int]:
        with engine.connect() as conn:
            return list(conn.execute(make(conn.dialect)).scalars().all())

    return call


# -- checks ---------------------------------------------------------------------------------


def settle(engine: Engine) -> None:
    """Planner statistics, and a steady state to time.

    PostgreSQL: ``VACUUM ANALYZE`` of the three tables, so that autovacuum does not start
    in the middle of the timing and the visibility map allows index-only scans, as on a
    database that has been running for a while. SQLite: ``ANALYZE`` and a WAL checkpoint.
    """
    if engine.dialect.name != "postgresql":
        timeline_settle(engine)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) customer, customer_tag, interaction"))


def query_plan(engine: Engine, query: Select[Any]) -> str:
    """The backend's plan for ``query`` with its parameters bound as when it runs.

    SQLite: the steps of ``EXPLAIN QUERY PLAN``. PostgreSQL: the top node, the estimated
    cost and whether JIT compilation would start (a large part of a query's time here).
    """
    sqlite = engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> tuple[str, Any]:
        return prefix + statement, parameters

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", explain, retval=True)
        lines = [str(row[-1]) for row in conn.execute(query).all()]
    if sqlite:
        return " | ".join(line.strip() for line in lines)
    jit = next((line.strip() for line in lines if line.strip().startswith("Options:")), None)
    top = re.sub(r"\s*\(cost=[\d.]+\.\.([\d.]+).*\)", r" (cost \1)", lines[0].strip())
    return f"{top}; JIT: {jit.removeprefix('Options: ') if jit else 'off'}"


def check_same_ids(calls: Mapping[str, Callable[[], list[int]]]) -> set[int]:
    """Refuse to time candidates that do not select the same customers (or one twice)."""
    found = {name: call() for name, call in calls.items()}
    expected = set(found["reference"])
    for name, ids in found.items():
        if len(ids) != len(set(ids)) or set(ids) != expected:
            raise RuntimeError(
                f"the {name} selects {len(set(ids)):,} customers ({len(ids):,} rows), the "
                f"reference {len(expected):,}: the benchmark would compare different work")
    if not expected:
        raise RuntimeError("the segment matches no customer: the generated data are wrong")
    return expected


def check_python_agrees(crm: Crm, settings: CriteriaSettings, matched: set[int]) -> int:
    """Evaluate the segment in Python on a sample of customers read through the ORM.

    Customer 1 (the one with the most interactions) and every ``customers / check_sample``-th
    one are read with their tags and interactions through the kernel's models and types;
    :meth:`Criteria.evaluate` must give SQL's answer for each. This also shows that the
    generated JSON, times and tags read back as the kernel expects. Returns how many of
    the sampled customers are in the segment.
    """
    criteria = crm.criteria(SEGMENT)
    step = max(1, settings.customers // settings.check_sample)
    ids = sorted({1, *range(step, settings.customers + 1, step)})
    with Session(crm.engine) as session:
        customers = session.scalars(select(Customer).where(Customer.id.in_(ids))).all()
        interactions: dict[int, list[Interaction]] = {cid: [] for cid in ids}
        for row in session.scalars(select(Interaction).where(Interaction.customer_id.in_(ids))):
            interactions[row.customer_id].append(row)
        disagree = [
            customer.id for customer in customers
            if criteria.evaluate(CustomerRecord.of(customer, interactions[customer.id]), NOW)
            != (customer.id in matched)
        ]
    if len(customers) != len(ids) or disagree:
        raise RuntimeError(f"SQL and Python evaluation of the segment disagree on customers "
                           f"{disagree[:10]} ({len(customers)} of {len(ids)} read back)")
    return sum(1 for cid in ids if cid in matched)


# -- timing ---------------------------------------------------------------------------------


def measure(crm: Crm, dataset: Dataset, settings: CriteriaSettings, log: Log,
            label: str) -> list[Result]:
    """Check the candidates agree, then time them interleaved on the kernel's engine."""
    engine = crm.engine
    makers = candidates(crm, engine.dialect)
    calls = {name: id_call(engine, make) for name, make in makers.items()}
    matched = check_same_ids(calls)
    sampled = check_python_agrees(crm, settings, matched)
    plans = {name: query_plan(engine, make(engine.dialect)) for name, make in makers.items()}
    for name, plan in plans.items():
        log(f"{label}: {name} plan: {plan}")
    log(f"{label}: the segment matches {len(matched):,} of {dataset.customers:,} customers; "
        f"timing {settings.samples} queries of each candidate")
    timings = interleaved_calls(calls, samples=settings.samples, warmup=settings.warmup)
    subject, reference, proposed = (timings[name] for name in ("subject", "reference",
                                                               "proposed"))
    size = f"{dataset.customers:,} customers, {dataset.interactions:,} interactions"
    note = (f"matches {len(matched):,} customers, all ids fetched; Python evaluation agrees "
            f"on {check_sample_size(settings):,} sampled customers ({sampled} in the segment); "
            f"fastest {format_duration(min(subject))} vs {format_duration(min(reference))} "
            f"= {min(subject) / min(reference):.3f}x; reference: "
            f"{REFERENCE_FORMS[engine.dialect.name]}")
    proposed_note = (f"not the kernel: ProposedCriteria, {PROPOSED_FORMS[engine.dialect.name]};"
                     f" fastest {format_duration(min(proposed))} = "
                     f"{min(proposed) / min(reference):.3f}x the reference's")
    return [
        Result(f"criteria segment, {label} ({size})", median(subject), median(reference),
               "median", TARGET, note),
        Result(f"criteria segment, {label}, proposed SQL shape", median(proposed),
               median(reference), "median", TARGET, proposed_note),
    ]


def check_sample_size(settings: CriteriaSettings) -> int:
    step = max(1, settings.customers // settings.check_sample)
    return len({1, *range(step, settings.customers + 1, step)})


REFERENCE_FORMS = {
    "postgresql": "customer JOIN interaction, GROUP BY customer.id HAVING count(*) FILTER",
    "sqlite": "EXISTS / NOT EXISTS (... OFFSET 1) / NOT EXISTS, one json_each pass",
}
PROPOSED_FORMS = {
    "postgresql": "the kernel's own SQL (no suggestion left for PostgreSQL)",
    "sqlite": "the kernel's SQL with one json_each pass for LV or LT",
}


# -- one backend ----------------------------------------------------------------------------


def run_backend(url: str, root: Path, settings: CriteriaSettings, log: Log,
                label: str) -> list[Result]:
    """Build the database at ``url`` (already empty) and time the segment on it."""
    crm = Crm(make_config(url, root), discover_plugins=False)
    try:
        dataset = build(crm, settings, log, label)
        log(f"{label}: loaded {dataset.customers:,} customers and {dataset.interactions:,} "
            f"interactions in {dataset.load_seconds:.1f} s")
        return measure(crm, dataset, settings, log, label)
    finally:
        crm.close()


def run_sqlite(settings: CriteriaSettings, log: Log) -> list[Result]:
    """The criteria benchmark on a fresh SQLite file in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="crmkit-bench-") as tmp:
        root = Path(tmp)
        return run_backend(f"sqlite:///{root / 'bench.db'}", root, settings, log, "sqlite")


def run_postgres(url: str, settings: CriteriaSettings, log: Log) -> list[Result]:
    """The criteria benchmark on ``url``, after dropping every crmkit table there."""
    log("postgresql: dropping crmkit tables for a fresh load")
    reset_database(url)
    with tempfile.TemporaryDirectory(prefix="crmkit-bench-") as tmp:
        return run_backend(url, Path(tmp), settings, log, "postgresql")
