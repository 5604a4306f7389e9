"""Throw-away test databases: which backends, how to migrate them, how to put them back.

SQLite databases are files copied from a migrated template, one per test. A server database
(PostgreSQL, MariaDB) is shared by the whole session: it is migrated once, its baseline (the
kernel's tables and migration heads) is remembered, and after every test it is put back to
that baseline: plugin tables that the test created are dropped, their migration history is
forgotten, and every kernel table is emptied.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import Connection, MetaData, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from crmkit.app import Crm
from crmkit.config import Config, apply_env_overrides, validate_config
from crmkit.db import Base, make_engine
from crmkit.migrate import VERSION_TABLE, upgrade

__all__ = [
    "URLS_VARIABLE",
    "ServerBaseline",
    "backend_name",
    "create_session_database",
    "database_urls",
    "drop_session_database",
    "drop_stale_session_databases",
    "empty_tables",
    "make_config",
    "migrate_kernel",
    "reset_database",
    "restore_baseline",
    "snapshot_baseline",
]

URLS_VARIABLE = "CRMKIT_TEST_DATABASE_URLS"
#: Set to ``0`` to run on the databases named in ``CRMKIT_TEST_DATABASE_URLS`` themselves.
ISOLATE_VARIABLE = "CRMKIT_TEST_ISOLATE"


def database_urls() -> list[str]:
    """``sqlite`` plus every URL in ``CRMKIT_TEST_DATABASE_URLS`` (comma-separated)."""
    extra = [u.strip() for u in os.environ.get(URLS_VARIABLE, "").split(",") if u.strip()]
    return ["sqlite", *extra]


def backend_name(url: str) -> str:
    """``sqlite``, ``postgresql`` or ``mariadb``: the test id of a database URL."""
    if url == "sqlite":
        return "sqlite"
    name = make_url(url).get_backend_name()
    return "mariadb" if name in ("mysql", "mariadb") else name


def make_config(url: str, root: Path, data: Mapping[str, Any] | None = None) -> Config:
    """A validated in-memory config for ``url`` (no file, no environment)."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v
                              for k, v in (data or {}).items()}
    merged.setdefault("database", {})["url"] = url
    merged = apply_env_overrides(merged, {})
    validate_config(merged, "<test config>")
    return Config(data=merged, path=None, root=root, env={})


def _drop_tables(conn: Connection, names: set[str]) -> None:
    """Drop the tables ``names`` (reflected, so it works for tables no model describes)."""
    if not names:
        return
    reflected = MetaData()
    reflected.reflect(conn, only=sorted(names))
    reflected.drop_all(conn, tables=[t for t in reflected.sorted_tables if t.name in names])


def reset_database(url: str) -> None:
    """Drop every table in the database at ``url``, migration history included.

    The database named in ``CRMKIT_TEST_DATABASE_URLS`` is a throw-away one: this is how a
    test session starts from nothing, whatever an earlier (perhaps crashed) run left there.
    """
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _drop_tables(conn, set(inspect(conn).get_table_names()))
    finally:
        engine.dispose()


def empty_tables(url: str) -> None:
    """Delete every row from every crmkit table, children first."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _empty(conn, set(inspect(conn).get_table_names()))
    finally:
        engine.dispose()


def _empty(conn: Connection, existing: set[str]) -> None:
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in existing:
            conn.execute(table.delete())


def migrate_kernel(url: str, root: Path) -> None:
    """Bring the kernel's tables at ``url`` to head."""
    crm = Crm(make_config(url, root), discover_plugins=False)
    try:
        upgrade(crm)
    finally:
        crm.close()


@attrs.frozen
class ServerBaseline:
    """What a freshly migrated server database holds: its tables and migration heads."""

    tables: frozenset[str]
    versions: frozenset[str]


def _versions(conn: Connection) -> set[str]:
    return set(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def snapshot_baseline(url: str) -> ServerBaseline:
    """Remember the tables and migration heads of the (just migrated) database at ``url``."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return ServerBaseline(frozenset(inspect(conn).get_table_names()),
                                  frozenset(_versions(conn)))
    finally:
        engine.dispose()


def restore_baseline(url: str, baseline: ServerBaseline) -> bool:
    """Put the database at ``url`` back to ``baseline``, empty; ``False`` if it cannot be.

    Tables a test added (a plugin's, through its migrations) are dropped and their branch's
    migration history is deleted, so the next test may migrate a different version of the
    same plugin; the kernel's tables stay and are emptied. When a test dropped kernel
    tables, nothing is done and the answer is ``False``: migrate the database again.
    (A test that migrates the *kernel* beyond head must use a database of its own.)
    """
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            existing = set(inspect(conn).get_table_names())
            if not baseline.tables <= existing:
                return False
            _drop_tables(conn, existing - baseline.tables)
            # Alembic keeps only heads: a plugin revision that depends on a kernel one
            # replaces the kernel's row. Put the table back exactly as it was.
            if _versions(conn) != baseline.versions:
                conn.execute(text(f"DELETE FROM {VERSION_TABLE}"))
                for version in sorted(baseline.versions):
                    conn.execute(text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"),
                                 {"v": version})
            _empty(conn, existing & baseline.tables)
        return True
    finally:
        engine.dispose()


def create_session_database(url: str, suffix: str) -> str:
    """Create a database named ``<name>_<suffix>`` beside the one at ``url``; its URL.

    Concurrent test sessions (two developers' runs, a plugin's suite run in a subprocess,
    pytest-xdist workers) would otherwise empty and drop each other's tables. When the
    server refuses (no privilege) or ``CRMKIT_TEST_ISOLATE=0``, ``url`` itself is used.
    """
    if os.environ.get(ISOLATE_VARIABLE, "1") == "0":
        return url
    parsed = make_url(url)
    name = f"{parsed.database}_{suffix}"
    backend = backend_name(url)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            elif backend == "mariadb":
                charset, collation = conn.execute(text(
                    "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                    "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()"
                )).one()
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
                conn.execute(text(
                    f"CREATE DATABASE `{name}` CHARACTER SET {charset} COLLATE {collation}"
                ))
            else:
                return url
    except DBAPIError:
        return url
    finally:
        engine.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def drop_session_database(url: str, session_url: str) -> None:
    """Drop the database :func:`create_session_database` made (nothing if it made none)."""
    if session_url == url:
        return
    name = make_url(session_url).database
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if backend_name(url) == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        engine.dispose()


_LOCAL_HOSTS = frozenset({None, "", "127.0.0.1", "localhost", "::1"})


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def drop_stale_session_databases(url: str) -> list[str]:
    """Drop session databases beside ``url`` whose test process no longer runs.

    A session that was killed cannot drop its database. Only servers on this machine are
    cleaned, where the process id in the name (``<name>_s<pid>_<random>``) means something.
    """
    parsed = make_url(url)
    if os.environ.get(ISOLATE_VARIABLE, "1") == "0" or parsed.host not in _LOCAL_HOSTS:
        return []
    pattern = re.compile(rf"{re.escape(parsed.database or '')}_s(\d+)_[0-9a-f]{{6}}")
    backend = backend_name(url)
    listing = {"postgresql": "SELECT datname FROM pg_database", "mariadb": "SHOW DATABASES"}
    if backend not in listing:
        return []
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            names = list(conn.execute(text(listing[backend])).scalars())
    except DBAPIError:
        return []
    finally:
        engine.dispose()
    stale = [name for name in names
             if (m := pattern.fullmatch(name)) and not _process_alive(int(m.group(1)))]
    for name in stale:
        session_url = parsed.set(database=name).render_as_string(hide_password=False)
        drop_session_database(url, session_url)
    return stale
