"""The declarative base that kernel and plugin tables share, column types, and engines.

Plugins define their tables as plain SQLAlchemy models on :class:`Base`; the naming
convention gives every constraint a stable name, which Alembic needs to alter it later.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Numeric,
    create_engine,
    event,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

__all__ = [
    "MYSQL_TABLE_OPTIONS",
    "Base",
    "BigId",
    "Json",
    "Money",
    "UTCDateTime",
    "make_engine",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Table options for MariaDB, on every kernel table (plugins: pass them to
#: ``op.create_table`` and put them last in ``__table_args__``). A table otherwise takes the
#: database's defaults: latin1 cannot store an emoji, and MariaDB's default collations ignore
#: case and trailing spaces, which makes "BP-1", "bp-1" and "BP-1 " one external id, unlike
#: on PostgreSQL and SQLite. utf8mb4_nopad_bin compares text exactly, as they do.
MYSQL_TABLE_OPTIONS: dict[str, str] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_nopad_bin",
}

#: 64-bit identifiers; SQLite only auto-increments an ``INTEGER PRIMARY KEY``.
BigId = BigInteger().with_variant(Integer, "sqlite")

#: JSON documents; JSONB on PostgreSQL so they can be indexed and queried.
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as UTC and always returned timezone-aware.

    SQLite and MariaDB have no time zones; storing naive UTC everywhere and attaching UTC on
    the way out gives the same answer on every backend. MariaDB keeps microseconds only
    with ``DATETIME(6)``.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: crmkit stores timezone-aware times")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite through raw SQL
            value = dt.datetime.fromisoformat(value)
        aware: dt.datetime = value.replace(tzinfo=dt.UTC)
        return aware


class Money(TypeDecorator[Decimal]):
    """An exact amount of money: ``NUMERIC(18, 4)``, returned as :class:`~decimal.Decimal`.

    SQLite has no decimal type: a NUMERIC column there stores a REAL, which loses cents on
    large amounts (12345678901234.5678 comes back as ...5684). On SQLite the amount is
    stored as an integer count of ten-thousandths instead, which is exact and keeps
    ordering, comparisons, ``SUM()``, ``MIN()`` and ``MAX()`` right in SQL (they return the
    column's type). Other aggregates must say so: ``func.avg(Interaction.amount,
    type_=Money)``, or they return the stored integer on SQLite.
    """

    impl = Numeric(18, 4)
    cache_ok = True

    #: Decimal places kept; the integer on SQLite counts units of ``10 ** -SCALE``.
    SCALE = 4

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, self.SCALE))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError(f"money must be a Decimal, never a float: {value!r}")
        amount = Decimal(value)
        if dialect.name != "sqlite":
            return amount
        scaled = amount.scaleb(self.SCALE)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{amount} has more than {self.SCALE} decimal places")
        return int(scaled)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            # An integer from the column; a REAL from an aggregate such as AVG().
            exact = Decimal(value) if isinstance(value, int) else Decimal(str(value))
            return exact.scaleb(-self.SCALE)
        return Decimal(value)


class Base(DeclarativeBase):
    """The declarative base of every crmkit table, kernel and plugin alike."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the inline dispatcher and readers work while a writer commits; foreign keys
    # are off by default in SQLite; the busy timeout turns lock contention into waiting.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # LIKE is case-sensitive on PostgreSQL and on MariaDB with the kernel's binary collation;
    # SQLite folds ASCII case unless told otherwise. Case-insensitive searches lower() both
    # sides explicitly, so every backend gives the same answer.
    cursor.execute("PRAGMA case_sensitive_like=ON")
    cursor.close()


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_functions(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # SQLite's built-in lower() folds ASCII only, so a case-insensitive search for "müller"
    # would miss "MÜLLER" there while PostgreSQL and MariaDB find it. Python's str.lower
    # gives SQLite the same Unicode case folding as the other backends.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine configured for crmkit on any of the supported backends."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "connect", _sqlite_functions)
        # pysqlite defers BEGIN to the first write, so two transactions can both read and
        # then fail to upgrade their locks. Emit BEGIN IMMEDIATE ourselves (the recipe in
        # SQLAlchemy's SQLite docs): writers queue on the busy timeout. Work marked
        # read-only (execution option READ_ONLY, see Crm.transaction(readonly=True))
        # begins deferred, so in WAL mode it never waits for a writer.
        event.listen(engine, "connect", _sqlite_no_autobegin)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if backend in ("mysql", "mariadb"):
        kwargs.setdefault("isolation_level", "READ COMMITTED")
        if parsed.query.get("charset") is None:
            url = parsed.update_query_dict({"charset": "utf8mb4"}).render_as_string(
                hide_password=False
            )
    return create_engine(url, **kwargs)


def _sqlite_no_autobegin(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None


#: Execution option for read-only work: on SQLite its transactions begin deferred.
READ_ONLY = "crmkit_read_only"


def _sqlite_begin(conn: Any) -> None:
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
