"""``crmkit plugins ...``: list, info, enable, disable keep working; doctor finds and
explains every kind of broken plugin."""

from __future__ import annotations

import json
import types

import pytest

from crmkit import PluginInfo, hookimpl


def module(name: str, **attributes: object) -> types.ModuleType:
    plugin = types.ModuleType(name)
    vars(plugin).update(attributes)
    return plugin


def good_plugin(name: str = "good", **info: object) -> types.ModuleType:
    @hookimpl
    def customer_created(tx, customer):
        pass

    return module(f"plugin_{name}", customer_created=customer_created,
                  PLUGIN_INFO=PluginInfo(name=name, version="0", kernel=">=0.1", **info))


def doctor(crmkit_cli, *args: str) -> tuple[int, dict]:
    result = crmkit_cli.invoke("plugins", "doctor", "--json", *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def report_of(data: dict, plugin: str) -> dict:
    return next(r for r in data["plugins"] if r["plugin"] == plugin)


def check_of(data: dict, plugin: str, check: str) -> dict:
    return next(c for c in report_of(data, plugin)["checks"] if c["name"] == check)


# -- list, info, enable, disable -------------------------------------------------------------


def test_list_shows_installed_and_enabled_plugins(crmkit_cli, crmkit_plugins):
    crmkit_plugins.register(good_plugin())
    rows = json.loads(crmkit_cli.ok("plugins", "list", "--json").stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["good"]["enabled"] and by_name["good"]["distribution"] == "crmkit_test_good"
    assert by_name["loyalty"]["distribution"] == "crmkit_loyalty"
    assert not by_name["loyalty"]["enabled"]


def test_info_lists_the_hooks(crmkit_cli):
    data = json.loads(crmkit_cli.ok("plugins", "info", "loyalty", "--json").stdout)
    assert data["kernel"] == ">=0.1,<0.2"
    assert "interaction_logged" in data["hooks"]
    crmkit_cli.fails("plugins", "info", "nope", message="no plugin named 'nope' is installed")


def test_enable_and_disable_edit_the_config_file(crmkit_cli):
    crmkit_cli.ok("plugins", "enable", "loyalty")
    assert 'enabled = ["loyalty"]' in crmkit_cli.path.read_text()
    crmkit_cli.config = {"plugins": {"enabled": ["loyalty"]}}
    crmkit_cli.ok("plugins", "disable", "loyalty")
    assert "enabled = []" in crmkit_cli.path.read_text()


# -- new: the command is there (tests/test_scaffold.py tests what it generates) --------------


def test_new_is_a_plugins_command(crmkit_cli):
    assert "Generate NAME" in crmkit_cli.ok("plugins", "new", "--help").stdout


# -- doctor --------------------------------------------------------------------------------


def test_doctor_passes_healthy_plugins(crmkit_cli, crmkit_plugins):
    crmkit_plugins.register(good_plugin())
    code, data = doctor(crmkit_cli)
    assert code == 0, data
    assert data["ok"] is True
    good = report_of(data, "good")
    assert good["enabled"] and good["status"] == "ok"
    assert [(c["name"], c["status"]) for c in good["checks"]] == [(name, "ok") for name in (
        "imports", "declaration", "kernel", "dependencies", "hooks", "config", "migrations",
    )]
    assert check_of(data, "good", "hooks")["detail"] == "customer_created"
    assert report_of(data, "loyalty")["status"] == "ok"


def test_doctor_without_a_config_checks_the_installation_only(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from crmkit.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRMKIT_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["plugins", "doctor"])
    assert result.exit_code == 0, result.output
    assert "checking the installed plugins only" in result.output
    assert "loyalty (crmkit_loyalty 0.1.0): ok" in result.output
    assert list(tmp_path.iterdir()) == []  # no database file was created


def test_a_module_that_fails_to_import(crmkit_cli, crmkit_plugins, tmp_path, monkeypatch):
    (tmp_path / "exploding_plugin.py").write_text("raise RuntimeError('missing licence key')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    crmkit_plugins.install("exploding", "exploding_plugin")
    crmkit_plugins.install("vanished", "no_such_module_anywhere")
    code, data = doctor(crmkit_cli)
    assert code == 1
    exploding = check_of(data, "exploding", "imports")
    assert exploding["status"] == "fail"
    assert "RuntimeError: missing licence key" in exploding["detail"]
    assert "pip install --force-reinstall crmkit_test_exploding" in exploding["fix"]
    assert "ModuleNotFoundError" in check_of(data, "vanished", "imports")["detail"]
    assert report_of(data, "loyalty")["status"] == "ok"  # one broken plugin hides nothing


def test_text_output_explains_each_problem_with_its_fix(crmkit_cli, crmkit_plugins):
    crmkit_plugins.install("vanished", "no_such_module_anywhere")
    result = crmkit_cli.invoke("plugins", "doctor")
    assert result.exit_code == 1
    assert "vanished (crmkit_test_vanished 0): fail" in result.output
    assert "  [FAIL] imports: its module 'no_such_module_anywhere' failed to import" \
        in result.output
    assert "         fix: fix the import error, or reinstall crmkit_test_vanished" \
        in result.output


@pytest.mark.parametrize(("plugin", "check", "detail", "fix"), [
    (module("p", PLUGIN_INFO=PluginInfo(name="other")), "declaration",
     "PLUGIN_INFO names it 'other' but it is registered as 'broken'", "fix PLUGIN_INFO"),
    (module("p", PLUGIN_INFO={"name": "broken"}), "declaration",
     "PLUGIN_INFO must be a crmkit.PluginInfo instance", "fix PLUGIN_INFO"),
    (module("p", PLUGIN_INFO=PluginInfo(name="broken", kernel=">=9")), "kernel",
     "supports crmkit >=9 but this is crmkit", "pip install -U crmkit_test_broken"),
    (module("p", PLUGIN_INFO=PluginInfo(name="broken", kernel="newest")), "kernel",
     "is not a version specifier", "pip install -U"),
    (module("p", PLUGIN_INFO=PluginInfo(name="broken", requires=("ghost",))), "dependencies",
     "requires plugin 'ghost', which is not installed", "pip install crmkit-ghost"),
])
def test_doctor_explains_a_bad_declaration(crmkit_cli, crmkit_plugins, plugin, check, detail,
                                           fix):
    crmkit_plugins.install("broken", plugin)
    code, data = doctor(crmkit_cli)
    assert code == 1
    found = check_of(data, "broken", check)
    assert found["status"] == "fail"
    assert detail in found["detail"]
    assert fix in found["fix"]


def test_doctor_checks_the_distributions_requirements(crmkit_cli, crmkit_plugins):
    crmkit_plugins.install("needy", good_plugin("needy"),
                           requires=["crmkit-nonexistent-lib>=1", "pluggy>=99",
                                     "pytest; extra == 'test'"])
    code, data = doctor(crmkit_cli)
    found = check_of(data, "needy", "dependencies")
    assert code == 1 and found["status"] == "fail"
    assert "needs crmkit-nonexistent-lib>=1, which is not installed" in found["detail"]
    assert "needs pluggy>=99, but pluggy" in found["detail"]
    assert "pytest" not in found["detail"]  # only for the "test" extra
    assert "pip install 'pluggy>=99'" in found["fix"]


def misspelled_hook():
    @hookimpl
    def customer_create(tx, customer):
        pass

    return module("p", customer_create=customer_create,
                  PLUGIN_INFO=PluginInfo(name="typo", kernel=">=0.1"))


def misspelled_argument():
    @hookimpl
    def customer_created(tx, custmer):
        pass

    return module("p", customer_created=customer_created,
                  PLUGIN_INFO=PluginInfo(name="typo", kernel=">=0.1"))


@pytest.mark.parametrize(("make", "detail"), [
    (misspelled_hook, "did you mean 'customer_created'?"),
    (misspelled_argument, "customer_created accepts tx, customer"),
])
def test_doctor_finds_misspelled_hooks_and_arguments(crmkit_cli, crmkit_plugins, make, detail):
    crmkit_plugins.install("typo", make())
    code, data = doctor(crmkit_cli)
    found = check_of(data, "typo", "hooks")
    assert code == 1 and found["status"] == "fail"
    assert detail in found["detail"]


def test_a_plugin_without_plugin_info_is_a_warning(crmkit_cli, crmkit_plugins):
    crmkit_plugins.install("bare", module("p"))
    code, data = doctor(crmkit_cli)
    assert code == 0
    found = check_of(data, "bare", "declaration")
    assert found["status"] == "warn"
    assert 'PLUGIN_INFO = crmkit.PluginInfo(name="bare"' in found["fix"]


def test_an_invalid_config_table(crmkit_cli, crmkit_plugins):
    import crmkit_loyalty

    crmkit_plugins.register(crmkit_loyalty)
    crmkit_cli.config = {"plugin": {"loyalty": {"points_per_unit": "many"}}}
    code, data = doctor(crmkit_cli)
    found = check_of(data, "loyalty", "config")
    assert code == 1 and found["status"] == "fail"
    assert "plugin.loyalty.points_per_unit: must be of type number" in found["detail"]
    assert f"edit [plugin.loyalty] in {crmkit_cli.path}" == found["fix"]


def test_a_config_table_of_a_plugin_that_is_not_enabled(crmkit_cli):
    crmkit_cli.config = {"plugin": {"loyalty": {"points_per_unit": 2}}}
    code, data = doctor(crmkit_cli)
    assert check_of(data, "loyalty", "config")["status"] == "warn"


def test_migrations_behind_then_upgraded(crmkit_cli):
    # Enabled in the file but never upgraded: the plugin is installed, not registered, so
    # crmkit_cli does not migrate it first.
    crmkit_cli.config = {"plugins": {"enabled": ["loyalty"]}}
    code, data = doctor(crmkit_cli)
    found = check_of(data, "loyalty", "migrations")
    assert code == 1 and found["status"] == "fail"
    assert found["detail"] == "branch loyalty is at nothing, head is loyalty_0001"
    assert found["fix"] == "run `crmkit db upgrade`"
    crmkit_cli.ok("db", "upgrade")
    code, data = doctor(crmkit_cli)
    assert code == 0
    assert check_of(data, "loyalty", "migrations")["detail"] == "at head (loyalty_0001)"


def test_an_enabled_plugin_that_is_not_installed(crmkit_cli):
    crmkit_cli.config = {"plugins": {"enabled": ["ghost"]}}
    code, data = doctor(crmkit_cli)
    found = check_of(data, "ghost", "installed")
    assert code == 1
    assert "pip install crmkit-ghost, or remove 'ghost' from plugins.enabled" in found["fix"]


def test_an_invalid_config_file_is_reported_and_plugins_are_still_checked(crmkit_cli):
    crmkit_cli.config = {"events": {"dispatch": "sometimes"}}
    code, data = doctor(crmkit_cli)
    assert code == 1 and data["ok"] is False
    assert "events.dispatch" in data["config_error"]
    assert report_of(data, "loyalty")["status"] == "ok"
