"""A pytest plugin for testing crmkit and crmkit plugins: ``pytest_plugins = ["crmkit.testing"]``.

Fixtures:

* ``crmkit_database_url`` — a migrated, empty database; tests that use it (directly or
  through ``crm``) run once on SQLite and once per URL in ``CRMKIT_TEST_DATABASE_URLS``
  (comma-separated; PostgreSQL and MariaDB in CI). Server databases are migrated once per
  session and emptied after each test.
* ``crm_factory`` — ``crm_factory(plugins={"name": obj}, config={...})`` builds a
  throw-away :class:`~crmkit.Crm` on that database, without entry-point discovery.
* ``crm`` — ``crm_factory()`` with no plugins.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from crmkit.app import Crm
from crmkit.config import Config, apply_env_overrides, validate_config
from crmkit.db import Base, make_engine
from crmkit.migrate import VERSION_TABLE, upgrade

__all__ = ["backend_name", "database_urls", "reset_database"]

URLS_VARIABLE = "CRMKIT_TEST_DATABASE_URLS"
CrmFactory = Callable[..., Crm]


def database_urls() -> list[str]:
    """``sqlite`` plus every URL in ``CRMKIT_TEST_DATABASE_URLS``."""
    extra = [u.strip() for u in os.environ.get(URLS_VARIABLE, "").split(",") if u.strip()]
    return ["sqlite", *extra]


def backend_name(url: str) -> str:
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


def reset_database(url: str) -> None:
    """Drop every crmkit table and the migration history (for a fresh migration run)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            existing = set(inspect(conn).get_table_names())
            Base.metadata.drop_all(conn, tables=[
                t for t in Base.metadata.sorted_tables if t.name in existing
            ])
            if VERSION_TABLE in existing:
                conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))
    finally:
        engine.dispose()


def empty_tables(url: str) -> None:
    """Delete every row from every crmkit table, children first."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            existing = set(inspect(conn).get_table_names())
            for table in reversed(Base.metadata.sorted_tables):
                if table.name in existing:
                    conn.execute(table.delete())
    finally:
        engine.dispose()


def _migrate(url: str, root: Path) -> None:
    crm = Crm(make_config(url, root), discover_plugins=False)
    try:
        upgrade(crm)
    finally:
        crm.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crmkit_database_url" in metafunc.fixturenames:
        urls = database_urls()
        metafunc.parametrize(
            "crmkit_database_url", urls, indirect=True, ids=[backend_name(u) for u in urls]
        )


@pytest.fixture(scope="session")
def _crmkit_migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Backend → URL of a database migrated to head (for SQLite, a template file)."""
    return {}


@pytest.fixture
def crmkit_database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _crmkit_migrated: dict[str, str],
) -> Iterator[str]:
    """A migrated, empty database on the backend this test instance runs on."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        if "sqlite" not in _crmkit_migrated:
            template = tmp_path_factory.mktemp("crmkit-template") / "template.db"
            _migrate(f"sqlite:///{template}", template.parent)
            _crmkit_migrated["sqlite"] = str(template)
        target = tmp_path / "crmkit.db"
        shutil.copyfile(_crmkit_migrated["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    if backend not in _crmkit_migrated:
        reset_database(backend)
        _migrate(backend, tmp_path)
        _crmkit_migrated[backend] = backend
    empty_tables(backend)
    try:
        yield backend
    finally:
        empty_tables(backend)


@pytest.fixture
def crm_factory(crmkit_database_url: str, tmp_path: Path) -> Iterator[CrmFactory]:
    """Build deployments on the test database: ``crm_factory(plugins=..., config=...)``."""
    made: list[Crm] = []

    def factory(
        plugins: Mapping[str, object] | None = None, config: Mapping[str, Any] | None = None
    ) -> Crm:
        crm = Crm(make_config(crmkit_database_url, tmp_path, config), plugins=plugins,
                  discover_plugins=False)
        made.append(crm)
        return crm

    yield factory
    for crm in made:
        crm.close()


@pytest.fixture
def crm(crm_factory: CrmFactory) -> Crm:
    """A deployment with no plugins but the kernel, on the test database."""
    return crm_factory()
