"""Migrations: the migrated schema is the models' schema, upgrades are idempotent, and a
plugin's own branch upgrades after the kernel and is recorded in ``plugin_state``.

Every test starts from an empty database: a new file on SQLite, the session's server
database with every table dropped on PostgreSQL and MariaDB (the ``crmkit_database_url``
fixture migrates it again for the next test).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, event, inspect, select, text

from crmkit import Conflict, Crm, PluginError, PluginInfo, hookimpl
from crmkit.db import Base
from crmkit.migrate import (
    VERSION_TABLE,
    BranchStatus,
    MigrationError,
    alembic_config,
    recorded_plugins,
    status,
    upgrade,
)
from crmkit.models import PluginState
from crmkit.testing import backend_name, make_config, reset_database

VERSIONS = Path(__file__).parent / "migrations_fixtures" / "testplug_versions"
KERNEL_TABLES = frozenset({
    "customer", "customer_tag", "customer_contact", "external_ref", "interaction",
    "audit_entry", "outbox_event", "plugin_state",
})
WRITES = re.compile(r"^\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|RENAME)\b", re.IGNORECASE)

#: The kernel branch's newest revision.
KERNEL_HEAD = "0002_workflows"


class ThingPlugin:
    """A plugin with its own migration branch ("testplug"), creating ``testplug_thing``."""

    def __init__(self, version: str = "1.2.0", path: Path = VERSIONS) -> None:
        self.PLUGIN_INFO = PluginInfo(name="testplug", version=version)
        self.path = path

    @hookimpl
    def register_migrations(self, register: Callable[..., None]) -> None:
        register(self.path)


@pytest.fixture
def fresh_url(crmkit_database_url: str, tmp_path: Path) -> str:
    """An empty database on the backend of this test instance."""
    if backend_name(crmkit_database_url) == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    reset_database(crmkit_database_url)
    return crmkit_database_url


@pytest.fixture
def deploy(fresh_url: str, tmp_path: Path) -> Iterator[Callable[..., Crm]]:
    made: list[Crm] = []

    def build(*plugins: ThingPlugin) -> Crm:
        crm = Crm(make_config(fresh_url, tmp_path),
                  plugins={p.PLUGIN_INFO.name: p for p in plugins}, discover_plugins=False)
        made.append(crm)
        return crm

    yield build
    for crm in made:
        crm.close()


def kernel_only(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Compare the kernel's tables only.

    Ignored, and why that is safe: ``crmkit_alembic_version`` is Alembic's bookkeeping, not
    a model; plugin tables (tests may define models of their own on the shared ``Base``)
    belong to their plugins' branches and are not the kernel's to match.
    """
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in KERNEL_TABLES


def schema_differences(crm: Crm, metadata: MetaData = Base.metadata) -> list[Any]:
    with crm.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_object": kernel_only,
            "version_table": VERSION_TABLE,
        })
        return list(compare_metadata(context, metadata))


def versions(crm: Crm) -> set[str]:
    with crm.engine.connect() as conn:
        return set(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def plugin_states(crm: Crm) -> list[tuple[Any, ...]]:
    with crm.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(PluginState.__table__).order_by(PluginState.name))]


def schema_shape(crm: Crm) -> dict[str, list[tuple[str, str, bool]]]:
    with crm.engine.connect() as conn:
        inspector = inspect(conn)
        return {
            table: [(c["name"], str(c["type"]), c["nullable"])
                    for c in inspector.get_columns(table)]
            for table in sorted(inspector.get_table_names())
        }


# -- the kernel ---------------------------------------------------------------------------------


def test_status_before_and_after_upgrade(deploy: Callable[..., Crm]) -> None:
    crm = deploy()
    [before] = status(crm)
    assert before == BranchStatus("crmkit", None, KERNEL_HEAD)
    assert not before.at_head
    progress: list[str] = []
    after = upgrade(crm, progress=progress.append)
    assert progress == ["crmkit"]
    assert after == [BranchStatus("crmkit", KERNEL_HEAD, KERNEL_HEAD)]
    assert after[0].at_head
    assert status(crm) == after
    assert versions(crm) == {KERNEL_HEAD}
    assert recorded_plugins(crm) == {}  # the kernel is not a plugin


def test_migrated_schema_matches_the_models(deploy: Callable[..., Crm]) -> None:
    crm = deploy()
    upgrade(crm)
    assert schema_differences(crm) == []

    # Autogenerate does not compare CHECK constraints: compare their names ourselves.
    # (MariaDB adds unnamed-by-us json_valid() checks for JSON columns; ours all start ck_.)
    with crm.engine.connect() as conn:
        inspector = inspect(conn)
        for name in sorted(KERNEL_TABLES):
            table = Base.metadata.tables[name]
            expected = sorted(c.name for c in table.constraints
                              if c.__class__.__name__ == "CheckConstraint")
            found = sorted(c["name"] for c in inspector.get_check_constraints(name)
                           if c["name"] and c["name"].startswith("ck_"))
            assert found == expected, name


def test_the_schema_comparison_notices_a_difference(deploy: Callable[..., Crm]) -> None:
    """The check above can fail: a model the migration does not match is reported."""
    crm = deploy()
    upgrade(crm)
    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        if table.name in KERNEL_TABLES:
            table.to_metadata(changed)
    changed.tables["customer"].append_column(Column("nickname", String(50)))
    changed.tables["interaction"].c.summary.type = String(20)
    found = {(d[0], d[2], d[3].name) if d[0] == "add_column" else (d[0][0], d[0][2], d[0][3])
             for d in schema_differences(crm, changed)}
    assert found == {("add_column", "customer", "nickname"),
                     ("modify_type", "interaction", "summary")}


def test_upgrade_twice_changes_nothing(deploy: Callable[..., Crm]) -> None:
    crm = deploy(ThingPlugin())
    upgrade(crm)
    before = (versions(crm), plugin_states(crm), schema_shape(crm))
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(crm.engine, "before_cursor_execute", record)
    try:
        again = upgrade(crm)
    finally:
        event.remove(crm.engine, "before_cursor_execute", record)
    assert all(branch.at_head for branch in again)
    assert [s for s in statements if WRITES.match(s)] == []
    assert (versions(crm), plugin_states(crm), schema_shape(crm)) == before


# -- a plugin's branch -------------------------------------------------------------------------


def test_plugin_branch_upgrades_after_the_kernel(deploy: Callable[..., Crm]) -> None:
    crm = deploy(ThingPlugin())
    assert [(s.branch, s.current, s.head) for s in status(crm)] == [
        ("crmkit", None, KERNEL_HEAD), ("testplug", None, "0002_testplug")
    ]
    progress: list[str] = []
    result = upgrade(crm, progress=progress.append)
    assert progress == ["crmkit", "testplug"]
    assert result == [BranchStatus("crmkit", KERNEL_HEAD, KERNEL_HEAD),
                      BranchStatus("testplug", "0002_testplug", "0002_testplug")]
    # Alembic keeps only the graph's heads: the plugin's revision depends on 0001_kernel,
    # an ancestor of the kernel's head, so both heads stay; status (above) sees each branch
    # at head either way.
    assert versions(crm) == {"0002_testplug", KERNEL_HEAD}

    with crm.engine.connect() as conn:
        inspector = inspect(conn)
        assert [c["name"] for c in inspector.get_columns("testplug_thing")] == [
            "id", "customer_id", "label", "note"
        ]
        [fk] = inspector.get_foreign_keys("testplug_thing")
        assert (fk["referred_table"], fk["constrained_columns"]) == ("customer", ["customer_id"])
    assert recorded_plugins(crm) == {"testplug": "1.2.0"}
    [(name, version, installed_at, upgraded_at)] = plugin_states(crm)
    assert (name, version) == ("testplug", "1.2.0")
    assert installed_at is not None and upgraded_at is not None


def test_a_partly_applied_plugin_branch(deploy: Callable[..., Crm]) -> None:
    crm = deploy(ThingPlugin())
    upgrade(deploy())  # the kernel only
    with crm.engine.begin() as conn:
        command.upgrade(alembic_config(crm, conn), "0001_testplug")
    assert status(crm) == [BranchStatus("crmkit", KERNEL_HEAD, KERNEL_HEAD),
                           BranchStatus("testplug", "0001_testplug", "0002_testplug")]
    assert not status(crm)[1].at_head
    assert all(branch.at_head for branch in upgrade(crm))
    with crm.engine.connect() as conn:
        assert "note" in {c["name"] for c in inspect(conn).get_columns("testplug_thing")}


def test_a_new_plugin_version_is_recorded(deploy: Callable[..., Crm]) -> None:
    upgrade(deploy(ThingPlugin("1.2.0")))
    [(_, _, installed_at, upgraded_at)] = plugin_states(deploy())
    crm = deploy(ThingPlugin("1.3.0"))
    upgrade(crm)
    [(name, version, installed_again, upgraded_again)] = plugin_states(crm)
    assert (name, version) == ("testplug", "1.3.0")
    assert installed_again == installed_at
    assert upgraded_again > upgraded_at


def test_a_missing_versions_directory_names_the_plugin(
    deploy: Callable[..., Crm], tmp_path: Path
) -> None:
    crm = deploy(ThingPlugin(path=tmp_path / "nowhere"))
    with pytest.raises(PluginError) as info:
        upgrade(crm)
    assert (info.value.plugin, info.value.hook) == ("testplug", "register_migrations")
    assert f"no such directory: {tmp_path / 'nowhere'}" in str(info.value)


# -- text semantics that must not depend on how the database was created ----------------------


@pytest.fixture
def database_defaults(fresh_url: str) -> Iterator[None]:
    """On MariaDB, make the database's defaults the unhelpful ones (latin1, case-insensitive)
    while the test migrates it; the kernel's tables must not inherit them."""
    if backend_name(fresh_url) != "mariadb":
        yield
        return
    from crmkit.db import make_engine

    engine = make_engine(fresh_url)
    try:
        with engine.connect() as conn:
            name, charset, collation = conn.execute(text(
                "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
                "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()")).one()
            conn.execute(text(f"ALTER DATABASE `{name}` CHARACTER SET latin1 "
                              "COLLATE latin1_swedish_ci"))
        try:
            yield
        finally:
            with engine.connect() as conn:
                conn.execute(text(f"ALTER DATABASE `{name}` CHARACTER SET {charset} "
                                  f"COLLATE {collation}"))
    finally:
        engine.dispose()


def test_text_is_unicode_and_exact_whatever_the_database_defaults(
    database_defaults: None, deploy: Callable[..., Crm], fresh_url: str
) -> None:
    crm = deploy()
    upgrade(crm)
    if backend_name(fresh_url) == "mariadb":
        with crm.engine.connect() as conn:
            collations = dict(conn.execute(text(
                "SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE()")).all())
        assert {collations[t] for t in KERNEL_TABLES} == {"utf8mb4_nopad_bin"}
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="organization", name="Émoji 😀 GmbH",
                                       tags=["VIP", "vip"], external_refs={"sap": "BP-1"})
        other = tx.customers.create(kind="organization", name="Other",
                                    external_refs={"sap": "bp-1"})  # a different id
        padded = tx.customers.create(kind="organization", name="Padded",
                                     external_refs={"sap": "BP-1 "})  # so is this
    with crm.transaction() as tx:
        assert tx.customers.get(customer.id).name == "Émoji 😀 GmbH"
        assert tx.customers.get(customer.id).tags == ["VIP", "vip"]
        assert tx.customers.find_by_external_ref("sap", "bp-1").id == other.id
        assert tx.customers.find_by_external_ref("sap", "BP-1 ").id == padded.id
        assert tx.customers.find_by_external_ref("sap", "BP-1").id == customer.id
        assert [c.id for c in tx.customers.list(tag="vip").items] == [customer.id]
    with pytest.raises(Conflict), crm.transaction() as tx:
        tx.customers.create(kind="person", name="Dup", external_refs={"sap": "BP-1"})


def test_a_disabled_plugin_keeps_its_branch_known(
    deploy: Callable[..., Crm], crmkit_plugins: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upgrade(deploy(ThingPlugin()))
    # Disabled but still installed: the kernel reads its revisions, never upgrades them.
    (tmp_path / "testplug_installed.py").write_text(
        "from pathlib import Path\n"
        "from crmkit import PluginInfo, hookimpl\n"
        "PLUGIN_INFO = PluginInfo(name='testplug', version='1.2.0')\n"
        "@hookimpl\n"
        "def register_migrations(register):\n"
        f"    register(Path({str(VERSIONS)!r}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    crmkit_plugins.install("testplug", "testplug_installed")
    without = deploy()
    assert [(s.branch, s.at_head) for s in status(without)] == [("crmkit", True)]
    assert [s.branch for s in upgrade(without)] == ["crmkit"]
    assert "0002_testplug" in versions(without)


def test_a_database_with_an_uninstalled_plugins_revisions_is_refused_clearly(
    deploy: Callable[..., Crm],
) -> None:
    upgrade(deploy(ThingPlugin()))
    without = deploy()
    for attempt in (status, upgrade):
        with pytest.raises(MigrationError, match=r"0002_testplug\) of plugins that are not "
                           r"installed: testplug\. Install them again"):
            attempt(without)
