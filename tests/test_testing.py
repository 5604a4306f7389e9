"""crmkit.testing, the pytest plugin for plugin authors: its fixtures do what they say."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import click
import pytest
from sqlalchemy import inspect

from crmkit import PluginInfo, hookimpl
from crmkit.migrate import status
from crmkit.plugins import discover
from crmkit.testing import HookRecorder, database_urls

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


# -- crmkit_recorder -------------------------------------------------------------------------


def test_the_recorder_sees_lifecycle_hooks_that_no_plugin_implements(crm, crmkit_recorder):
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Ada")
        tx.interactions.log(customer, channel="phone", kind="note", summary="Hello")
    assert [c.hook for c in crmkit_recorder.calls()] == [
        "before_customer_save", "customer_created", "interaction_logged",
    ]
    created = crmkit_recorder.call("customer_created")
    assert created.customer.id == customer.id
    assert created.plugins == ()  # the recorder's own pass-through is not listed
    assert crmkit_recorder.call("interaction_logged").interaction.summary == "Hello"


def test_the_recorder_names_the_plugins_and_records_failures(crm_factory, crmkit_recorder):
    class Refuser:
        @hookimpl
        def before_customer_save(self, values):
            if values["name"] == "Mallory":
                raise RuntimeError("no")

    crm = crm_factory(plugins={"refuser": Refuser()})
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Alice")
    with pytest.raises(Exception, match="no"), crm.transaction() as tx:
        tx.customers.create(kind="person", name="Mallory")
    ok, failed = crmkit_recorder.calls("before_customer_save")
    assert ok.plugins == ("refuser",) and ok.exception is None
    assert isinstance(failed.exception, RuntimeError)
    assert len(crmkit_recorder.events("customer.created")) == 1  # only what committed


def test_the_recorder_attaches_to_deployments_built_before_it(crm_factory, request):
    crm = crm_factory()
    recorder: HookRecorder = request.getfixturevalue("crmkit_recorder")
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada")
    assert recorder.call("customer_created")


def test_events_deliveries_and_clear(crm_factory, crmkit_recorder):
    class Listener:
        @hookimpl
        def handle_event(self, event):
            if event.name == "customer.updated":
                raise ValueError("the ERP is down")

    crm = crm_factory(plugins={"listener": Listener()})
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Ada")
    with crm.transaction() as tx:
        tx.customers.update(customer.id, name="Ada L.")
    created = crmkit_recorder.event("customer.created")
    assert created.payload["customer_id"] == customer.id
    assert [e.name for e in crmkit_recorder.events()] == ["customer.created", "customer.updated"]
    delivered, failed = crmkit_recorder.deliveries()
    assert (delivered.plugin, delivered.event.id, delivered.exception) == \
        ("listener", created.id, None)
    assert "the ERP is down" in str(failed.exception)
    crmkit_recorder.clear()
    assert crmkit_recorder.calls() == [] and crmkit_recorder.events() == []
    assert crmkit_recorder.deliveries() == []


def test_call_and_event_fail_clearly_unless_there_is_exactly_one(crm, crmkit_recorder):
    with pytest.raises(AssertionError, match=r"expected 1 call of customer_created, got 0 "
                                             r"\(recorded: nothing\)"):
        crmkit_recorder.call("customer_created")
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="A")
        tx.customers.create(kind="person", name="B")
    with pytest.raises(AssertionError, match="expected 1 customer.created event, got 2"):
        crmkit_recorder.event("customer.created")
    with pytest.raises(AttributeError, match="customer_created was not called with 'changes'"):
        _ = crmkit_recorder.calls("customer_created")[0].changes


# -- crmkit_plugins and crm_factory ----------------------------------------------------------


class Greeter:
    PLUGIN_INFO = PluginInfo(name="greeter", version="1.0")

    @hookimpl
    def register_commands(self, register):
        @click.command("greet")
        def greet():
            """Say hello."""
            click.echo("hello from a plugin object")

        register(greet)


def test_registered_plugins_join_every_deployment(crmkit_plugins, crm_factory):
    crmkit_plugins.register(Greeter())
    crm = crm_factory(plugins={"other": object()})
    assert crm.host.names() == ["crmkit", "greeter", "other"]


def test_register_by_import_path_and_name_rules(crmkit_plugins):
    import crmkit_loyalty

    assert crmkit_plugins.register("crmkit_loyalty") is crmkit_loyalty
    assert "loyalty" in crmkit_plugins
    with pytest.raises(ValueError, match="has no PLUGIN_INFO; pass its name"):
        crmkit_plugins.register(object())


def test_install_makes_an_object_an_entry_point_for_the_test(crmkit_plugins):
    plugin = Greeter()
    crmkit_plugins.install("greeter", plugin, version="1.0")
    found = discover()["greeter"]
    assert (found.distribution, found.dist_version) == ("crmkit_test_greeter", "1.0")
    assert found.load() is plugin
    assert "greeter" not in crmkit_plugins  # installed, not registered


def test_a_real_entry_point_is_not_shadowed(crmkit_plugins):
    import crmkit_loyalty

    crmkit_plugins.register(crmkit_loyalty)
    assert discover()["loyalty"].distribution == "crmkit_loyalty"


MIGRATION = '''\
revision = "{revision}"
down_revision = None
branch_labels = ("notes",)
depends_on = "0001_kernel"

import sqlalchemy as sa
from alembic import op


def upgrade():
    op.create_table("notes_{table}", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("notes_{table}")
'''


def notes_plugin(directory: Path, revision: str, table: str) -> object:
    versions = directory / "versions"
    versions.mkdir(parents=True)
    (versions / f"{revision}.py").write_text(MIGRATION.format(revision=revision, table=table))

    class Notes:
        @hookimpl
        def register_migrations(self, register):
            register(versions)

    return Notes()


def test_crm_factory_brings_a_plugins_branch_to_head(crm_factory, tmp_path):
    crm = crm_factory(plugins={"notes": notes_plugin(tmp_path / "notes", "notes_0001", "a")})
    assert {s.branch: s.current for s in status(crm)}["notes"] == "notes_0001"
    assert inspect(crm.engine).has_table("notes_a")


def test_plugin_tables_and_history_are_gone_for_the_next_test(pytester, monkeypatch):
    """Two tests migrate different versions of one plugin's branch on the same database:
    the second only works if the first one's tables and history were removed."""
    monkeypatch.chdir(pytester.path)
    pytester.makeconftest('pytest_plugins = ["crmkit.testing"]\n')
    pytester.makepyfile(test_inner=textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from sqlalchemy import inspect
        from test_testing import notes_plugin

        def test_first(crm_factory, tmp_path):
            crm = crm_factory(plugins={{"notes": notes_plugin(tmp_path, "notes_a1", "a")}})
            assert inspect(crm.engine).has_table("notes_a")

        def test_second(crm_factory, tmp_path):
            crm = crm_factory(plugins={{"notes": notes_plugin(tmp_path, "notes_b1", "b")}})
            tables = inspect(crm.engine).get_table_names()
            assert "notes_b" in tables and "notes_a" not in tables
    '''))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2 * len(database_urls()))  # SQLite and every server


# -- crmkit_cli ------------------------------------------------------------------------------


def test_the_cli_loads_registered_plugin_objects(crmkit_cli, crmkit_plugins):
    crmkit_plugins.register(Greeter())
    assert crmkit_cli.ok("greet").stdout == "hello from a plugin object\n"
    rows = json.loads(crmkit_cli.ok("plugins", "list", "--json").stdout)
    greeter = next(r for r in rows if r["name"] == "greeter")
    assert greeter["enabled"] and greeter["distribution"] == "crmkit_test_greeter"


def test_the_cli_runs_on_the_test_database(crmkit_cli, crm):
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Ada")
    shown = json.loads(crmkit_cli.ok("customers", "show", str(customer.id), "--json").stdout)
    assert shown["name"] == "Ada"


def test_the_cli_ignores_the_callers_crmkit_environment(crmkit_cli, monkeypatch, tmp_path):
    monkeypatch.setenv("CRMKIT_DATABASE_URL", f"sqlite:///{tmp_path}/elsewhere.db")
    crmkit_cli.ok("customers", "list")
    assert not (tmp_path / "elsewhere.db").exists()


def test_cli_runs_are_recorded(crmkit_cli, crmkit_recorder):
    crmkit_cli.ok("customers", "add", "--kind", "person", "--name", "Ada")
    assert crmkit_recorder.event("customer.created").payload["customer"]["name"] == "Ada"
    assert crmkit_recorder.call("customer_created").customer.name == "Ada"


def test_ok_and_fails_describe_what_went_wrong(crmkit_cli):
    with pytest.raises(AssertionError, match="crmkit customers show 999999 exited 1"):
        crmkit_cli.ok("customers", "show", "999999")
    with pytest.raises(AssertionError, match="exited 0"):
        crmkit_cli.fails("customers", "list")


# -- the test suite's own layout --------------------------------------------------------------


def test_test_module_basenames_are_unique_across_all_testpaths():
    """pytest's default import mode imports test modules by basename: two test_x.py in
    different distributions' tests/ would collide (see [tool.pytest.ini_options])."""
    seen: dict[str, Path] = {}
    for pattern in ("tests", "contrib/*/tests", "plugins/*/tests"):
        for directory in ROOT.glob(pattern):
            for module in directory.rglob("test_*.py"):
                assert module.name not in seen, f"{module} and {seen[module.name]}"
                seen[module.name] = module
    assert "test_loyalty_points.py" in seen


def test_session_databases_of_dead_sessions_are_dropped(crmkit_database_url):
    from crmkit.testing.database import (
        backend_name,
        create_session_database,
        drop_session_database,
        drop_stale_session_databases,
    )

    backend = backend_name(crmkit_database_url)
    if backend == "sqlite":  # a file per test: nothing to leave behind
        assert drop_stale_session_databases(crmkit_database_url) == []
        return
    configured = next(u for u in database_urls() if u != "sqlite" and backend_name(u) == backend)
    dead = create_session_database(configured, "s4999999_abc123")  # beyond any pid_max
    try:
        dropped = drop_stale_session_databases(configured)
        assert dead.rsplit("/", 1)[1].split("?")[0] in dropped
        assert crmkit_database_url.rsplit("/", 1)[1].split("?")[0] not in dropped  # alive
    finally:
        drop_session_database(configured, dead)


def test_installing_a_name_again_replaces_it(crmkit_plugins):
    first, second = Greeter(), Greeter()
    crmkit_plugins.install("twice", first)
    crmkit_plugins.install("twice", second)
    assert discover()["twice"].load() is second
