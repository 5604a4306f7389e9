"""The pytest plugin for crmkit and its plugins: ``pytest_plugins = ["crmkit.testing"]``.

Fixtures (each documented in its docstring):

* ``crmkit_database_url`` — a migrated, empty database; a test that uses it (directly or
  through any fixture below) runs once on SQLite and once per URL in
  ``CRMKIT_TEST_DATABASE_URLS`` (comma-separated; PostgreSQL and MariaDB in CI).
* ``crmkit_plugins`` — register plugin objects or modules under a name for this test.
* ``crm_factory`` — ``crm_factory(plugins={"name": obj}, config={...})``: a throw-away
  :class:`~crmkit.Crm` on that database, with the plugins' own migrations applied.
* ``crm`` — ``crm_factory()``: the kernel plus the plugins of ``crmkit_plugins``.
* ``crmkit_recorder`` — records hook calls, ``handle_event`` deliveries and committed
  outbox events (pytest's ``HookRecorder`` for crmkit).
* ``crmkit_cli`` — the ``crmkit`` admin tool bound to the test's deployment.

A plugin's test suite typically needs nothing but a ``conftest.py``::

    pytest_plugins = ["crmkit.testing"]

    @pytest.fixture(autouse=True)
    def _plugin(crmkit_plugins):
        crmkit_plugins.register(crmkit_myplugin)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from crmkit.app import Crm
from crmkit.errors import CrmkitError
from crmkit.migrate import branches, upgrade
from crmkit.testing.cli import CrmkitCli
from crmkit.testing.database import (
    URLS_VARIABLE,
    ServerBaseline,
    backend_name,
    create_session_database,
    database_urls,
    drop_session_database,
    drop_stale_session_databases,
    empty_tables,
    make_config,
    migrate_kernel,
    reset_database,
    restore_baseline,
    snapshot_baseline,
)
from crmkit.testing.plugins import PluginRegistry
from crmkit.testing.recorder import Delivery, HookCall, HookRecorder

__all__ = [
    "URLS_VARIABLE",
    "CrmFactory",
    "CrmkitCli",
    "Delivery",
    "HookCall",
    "HookRecorder",
    "PluginRegistry",
    "backend_name",
    "database_urls",
    "empty_tables",
    "make_config",
    "reset_database",
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "crmkit_database_url" in metafunc.fixturenames:
        urls = database_urls()
        metafunc.parametrize(
            "crmkit_database_url", urls, indirect=True, ids=[backend_name(u) for u in urls]
        )


@pytest.fixture(scope="session")
def _crmkit_migrated() -> Iterator[dict[str, Any]]:
    """Backend → its migrated state: a template file (SQLite) or a :class:`ServerBaseline`."""
    state: dict[str, Any] = {}
    try:
        yield state
    finally:
        for configured, session_url in state.get("session_urls", {}).items():
            drop_session_database(configured, session_url)


def _server_database(url: str, root: Path, migrated: dict[str, Any]) -> tuple[str, ServerBaseline]:
    """This session's database beside ``url`` and its baseline, migrated on first use."""
    session_urls: dict[str, str] = migrated.setdefault("session_urls", {})
    if url not in session_urls:
        drop_stale_session_databases(url)
        session_urls[url] = create_session_database(url, f"s{os.getpid()}_{secrets.token_hex(3)}")
    session_url = session_urls[url]
    if url not in migrated:
        reset_database(session_url)
        migrate_kernel(session_url, root)
        migrated[url] = snapshot_baseline(session_url)
    baseline: ServerBaseline = migrated[url]
    return session_url, baseline


@pytest.fixture
def crmkit_database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _crmkit_migrated: dict[str, Any],
) -> Iterator[str]:
    """The URL of a migrated, empty database on the backend this test instance runs on.

    SQLite: a file in ``tmp_path`` copied from a template migrated once per session.
    PostgreSQL and MariaDB (from ``CRMKIT_TEST_DATABASE_URLS``): one database for the
    session, migrated on first use, and after each test put back as it was: tables the
    test created (plugins' migrations) dropped with their migration history, kernel tables
    emptied. The session's database is ``<name>_s<pid>_<random>``, created beside the configured
    one and dropped at the end, so concurrent sessions do not disturb each other
    (``CRMKIT_TEST_ISOLATE=0``, or a server that refuses ``CREATE DATABASE``, uses the
    configured database itself). These databases are throw-away: every table in them is
    dropped when the session first uses them.
    """
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        if "sqlite" not in _crmkit_migrated:
            template = tmp_path_factory.mktemp("crmkit-template") / "template.db"
            migrate_kernel(f"sqlite:///{template}", template.parent)
            _crmkit_migrated["sqlite"] = str(template)
        target = tmp_path / "crmkit.db"
        shutil.copyfile(_crmkit_migrated["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    url, baseline = _server_database(backend, tmp_path, _crmkit_migrated)
    if not restore_baseline(url, baseline):
        del _crmkit_migrated[backend]
        url, baseline = _server_database(backend, tmp_path, _crmkit_migrated)
    try:
        yield url
    finally:
        if not restore_baseline(url, baseline):
            _crmkit_migrated.pop(backend, None)  # a test dropped kernel tables: start over


@pytest.fixture
def crmkit_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginRegistry:
    """Register plugin objects or modules under a name for this test.

    ``crmkit_plugins.register(obj_or_module, "name")`` (the name defaults to
    ``PLUGIN_INFO.name``; an import path such as ``"crmkit_loyalty"`` works too) makes the
    plugin part of every deployment the test builds: ``crm``, ``crm_factory()`` and
    ``crmkit_cli``. For the test's duration it is also *installed*: an entry point in group
    ``crmkit`` that :func:`crmkit.plugins.discover` finds, so the admin tool loads it like a
    pip-installed plugin. ``crmkit_plugins.install(name, target)`` installs without
    registering (``target`` may be an entry-point string whose module fails to import).

    Register in an autouse fixture of the plugin's ``conftest.py`` so that the ``crm``
    fixture includes it; a plugin registered after a deployment was built is not in it.
    """
    return PluginRegistry(tmp_path, monkeypatch)


class CrmFactory:
    """Builds deployments on the test database; the ``crm_factory`` fixture."""

    def __init__(self, database_url: str, root: Path, plugins: PluginRegistry) -> None:
        self.database_url = database_url
        self.root = root
        self.registry = plugins
        #: Every deployment built so far, oldest first.
        self.built: list[Crm] = []
        self._listeners: list[Callable[[Crm], None]] = []

    def __call__(
        self, plugins: Mapping[str, object] | None = None,
        config: Mapping[str, Any] | None = None, *, migrate: bool = True,
    ) -> Crm:
        """A :class:`~crmkit.Crm` on the test database, closed when the test ends.

        :param plugins: plugin objects by name, besides those of ``crmkit_plugins``.
        :param config: crmkit.toml content as a dict (``{"plugin": {"x": {...}}}``); the
            database URL is set for you.
        :param migrate: bring the plugins' own migration branches to head (default).
        """
        crm = Crm(make_config(self.database_url, self.root, config),
                  plugins={**self.registry.plugins, **(plugins or {})},
                  discover_plugins=False)
        self.built.append(crm)
        if migrate and len(branches(crm)) > 1:  # the kernel's branch is always at head
            upgrade(crm)
        self.notify(crm)
        return crm

    def notify(self, crm: Crm) -> None:
        """Hand ``crm``, built elsewhere in the test (a CLI run), to the listeners."""
        for listener in self._listeners:
            listener(crm)

    def on_build(self, listener: Callable[[Crm], None]) -> None:
        """Call ``listener`` with every deployment built from now on."""
        self._listeners.append(listener)

    def close(self) -> None:
        while self.built:
            self.built.pop().close()


@pytest.fixture
def crm_factory(
    crmkit_database_url: str, tmp_path: Path, crmkit_plugins: PluginRegistry
) -> Iterator[CrmFactory]:
    """Build throw-away deployments on the test database.

    ``crm_factory(plugins={"name": obj}, config={...})`` returns a started
    :class:`~crmkit.Crm` without entry-point discovery: its plugins are those registered
    with ``crmkit_plugins`` plus ``plugins``. A plugin that implements
    ``register_migrations`` gets its branch upgraded to head on the test database first
    (on server databases its tables are dropped again after the test). ``config`` is the
    content of crmkit.toml as a dict and is validated like the file. Every deployment is
    closed at the end of the test.
    """
    factory = CrmFactory(crmkit_database_url, tmp_path, crmkit_plugins)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def crm(crm_factory: CrmFactory) -> Crm:
    """A deployment on the test database: the kernel plus the ``crmkit_plugins`` plugins."""
    return crm_factory()


@pytest.fixture
def crmkit_recorder(
    crm_factory: CrmFactory, crmkit_database_url: str
) -> Iterator[HookRecorder]:
    """Record hook calls, event deliveries and committed events (pytest's ``HookRecorder``).

    Attached to every deployment ``crm_factory`` builds in the test, before or after this
    fixture (including ``crm``)::

        crmkit_recorder.calls("customer_created")     # [HookCall(...)], oldest first
        crmkit_recorder.call("interaction_logged").interaction   # exactly one call
        crmkit_recorder.events("customer.created")    # committed outbox events
        crmkit_recorder.deliveries("customer.created")  # handle_event calls per plugin

    Hook calls are recorded through pluggy's ``add_hookcall_monitoring``; lifecycle hooks
    are recorded even when no plugin implements them. ``events()`` reads the outbox of the
    test database, so it also sees what ``crmkit_cli`` runs committed; the hook calls of
    ``crmkit_cli`` runs are recorded too.
    """
    recorder = HookRecorder(crmkit_database_url)
    for crm in crm_factory.built:
        recorder.attach(crm)
    crm_factory.on_build(recorder.attach)
    try:
        yield recorder
    finally:
        recorder.detach()


@pytest.fixture
def crmkit_cli(
    crmkit_database_url: str, tmp_path: Path, crmkit_plugins: PluginRegistry,
    crm_factory: CrmFactory,
) -> CrmkitCli:
    """The ``crmkit`` admin tool, in-process, bound to the test's deployment.

    Each run writes ``tmp_path/cli/crmkit.toml`` (the test database, ``plugins.enabled`` =
    the ``crmkit_plugins`` names, plus ``crmkit_cli.config``), brings the plugins'
    migrations to head, and invokes ``crmkit --config <that file> ARGS``::

        result = crmkit_cli.ok("customers", "list", "--json")   # asserts exit code 0
        crmkit_cli.fails("customers", "show", "999", message="no customer")
        result = crmkit_cli.invoke("plugins", "list")          # click's Result

    Plugins registered with ``crmkit_plugins`` are installed as entry points for the
    test, so the admin tool discovers and loads them as it would in production.
    """

    def prepare(config: Mapping[str, Any]) -> None:
        if crmkit_plugins.names():
            # A config the test made bad on purpose fails here: the CLI run will say so.
            with contextlib.suppress(CrmkitError):
                crm_factory(config={k: v for k, v in config.items() if k != "plugins"})

    return CrmkitCli(crmkit_database_url, tmp_path / "cli", crmkit_plugins, prepare,
                     observe=crm_factory.notify)
