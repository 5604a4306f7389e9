"""Plugin loading: discovery through entry points, validation, dependency order.

Every way a plugin can be broken must stop start-up with a :class:`crmkit.PluginError` that
names the plugin and says what to do. Most tests here need no database: plugins are
registered and checked before the engine connects.
"""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest
from plugins_fixtures import analytics, loyalty, surveys

import crmkit
from crmkit import ConfigError, Crm, PluginError, PluginInfo, hookimpl
from crmkit.hookspecs import hookspec
from crmkit.plugins import PluginHost, discover, resolve_order
from crmkit.testing import make_config

KERNEL_VERSION = crmkit.__version__


def start(tmp_path: Path, plugins: dict[str, object]) -> Crm:
    """A deployment with ``plugins`` registered explicitly (the engine never connects)."""
    return Crm(make_config(f"sqlite:///{tmp_path / 'crm.db'}", tmp_path), plugins=plugins,
               discover_plugins=False)


def module(name: str, body: str = "", **attributes: object) -> types.ModuleType:
    """A plugin module built from source, as if imported from a package."""
    mod = types.ModuleType(name)
    source = "from crmkit import PluginInfo, hookimpl\n" + textwrap.dedent(body)
    exec(source, mod.__dict__)
    mod.__dict__.update(attributes)
    return mod


def load_error(tmp_path: Path, plugins: dict[str, object]) -> PluginError:
    with pytest.raises(PluginError) as caught:
        start(tmp_path, plugins)
    return caught.value


# -- what a broken plugin is told ------------------------------------------------------------


def test_a_missing_dependency_names_the_plugin_and_the_dependency(tmp_path):
    campaigns = module("crmkit_campaigns",
                       PLUGIN_INFO=PluginInfo(name="campaigns", requires=("sales",)))
    error = load_error(tmp_path, {"campaigns": campaigns})
    assert (error.plugin, error.hook) == ("campaigns", None)
    assert str(error) == (
        "plugin 'campaigns': requires plugin 'sales', which is not enabled; install it and "
        "add 'sales' to plugins.enabled, or disable 'campaigns'"
    )


def test_a_plugin_for_another_kernel_says_which_versions_it_supports(tmp_path):
    future = module("crmkit_future", PLUGIN_INFO=PluginInfo(name="future", kernel=">=99"))
    error = load_error(tmp_path, {"future": future})
    assert error.plugin == "future"
    assert str(error) == (
        f"plugin 'future': supports crmkit >=99 but this is crmkit {KERNEL_VERSION}; "
        f"install a version of the plugin made for crmkit {KERNEL_VERSION}"
    )


def test_a_kernel_requirement_that_is_not_a_specifier_is_refused(tmp_path):
    odd = module("crmkit_odd", PLUGIN_INFO=PluginInfo(name="odd", kernel="latest please"))
    error = load_error(tmp_path, {"odd": odd})
    assert error.plugin == "odd"
    assert "PLUGIN_INFO.kernel 'latest please' is not a version specifier" in str(error)


def test_a_compatible_kernel_requirement_loads(tmp_path):
    crm = start(tmp_path, {"loyalty": loyalty})  # kernel=">=0.1,<1"
    assert crm.host.names() == ["crmkit", "loyalty"]
    assert crm.host.infos["loyalty"].version == "1.2.0"


def test_a_misspelled_hook_name_is_refused_with_a_suggestion(tmp_path):
    typo = module("crmkit_typo", """
        @hookimpl
        def customer_creatd(tx, customer):
            pass
    """)
    error = load_error(tmp_path, {"typo": typo})
    assert error.plugin == "typo"
    message = str(error)
    assert message.startswith("plugin 'typo': unknown hook 'customer_creatd'")
    assert "did you mean 'customer_created'?" in message
    assert "rename it to a hook crmkit defines (see docs/hooks.md)" in message
    assert "@hookimpl(optionalhook=True)" in message


def test_a_misspelled_argument_is_refused_naming_the_accepted_ones(tmp_path):
    class Typo:
        @hookimpl
        def customer_updated(self, tx, customer, change):
            pass

    error = load_error(tmp_path, {"typo": Typo()})
    assert error.plugin == "typo"
    message = str(error)
    assert "hookimpl definition: customer_updated(tx, customer, change)" in message
    assert "{'change'}" in message
    assert "fix the hook implementation's arguments (customer_updated accepts tx, customer, " \
           "changes)" in message


def test_plugin_info_that_disagrees_with_the_entry_point_name_is_refused(tmp_path):
    sales = module("crmkit_sales", PLUGIN_INFO=PluginInfo(name="sales_pro"))
    error = load_error(tmp_path, {"sales": sales})
    assert error.plugin == "sales"
    assert str(error) == (
        "plugin 'sales': PLUGIN_INFO names it 'sales_pro' but it is registered as 'sales'; "
        "make the entry-point name and PLUGIN_INFO.name agree"
    )


def test_plugin_info_of_the_wrong_type_is_refused(tmp_path):
    sales = module("crmkit_sales", PLUGIN_INFO={"name": "sales"})
    error = load_error(tmp_path, {"sales": sales})
    assert str(error) == "plugin 'sales': PLUGIN_INFO must be a crmkit.PluginInfo instance"


def test_a_dependency_cycle_is_refused_showing_the_cycle(tmp_path):
    plugins = {
        name: module(f"crmkit_{name}", PLUGIN_INFO=PluginInfo(name=name, requires=(dep,)))
        for name, dep in [("sales", "campaigns"), ("campaigns", "surveys"), ("surveys", "sales")]
    }
    plugins["analytics"] = module("crmkit_analytics",
                                  PLUGIN_INFO=PluginInfo(name="analytics", requires=("sales",)))
    error = load_error(tmp_path, plugins)
    assert error.plugin == "sales"
    message = str(error)
    assert "dependency cycle: sales -> campaigns -> surveys -> sales;" in message
    assert "analytics" not in message  # it depends on the cycle but is not part of it
    assert "remove one of these from PLUGIN_INFO.requires" in message


def test_a_plugin_may_not_take_the_kernels_name(tmp_path):
    error = load_error(tmp_path, {"crmkit": module("impostor")})
    assert error.plugin == "crmkit"
    assert "a plugin of that name is already registered" in str(error)


def test_an_optional_implementation_of_an_unpublished_hook_is_ignored(tmp_path):
    crm = start(tmp_path, {"surveys": surveys})
    assert crm.host.names() == ["crmkit", "surveys"]
    assert crm.host.pm.hook.analytics_churn_factors.spec is None  # nobody published it


# -- dependency order --------------------------------------------------------------------------


@pytest.mark.parametrize("given", [
    ["analytics", "campaigns", "sales"],
    ["sales", "campaigns", "analytics"],
    ["campaigns", "sales", "analytics"],
])
def test_a_plugin_is_registered_after_the_plugins_it_requires(tmp_path, given):
    requires = {"campaigns": ("sales",), "analytics": ("campaigns", "sales"), "sales": ()}
    plugins = {
        name: module(f"crmkit_{name}", PLUGIN_INFO=PluginInfo(name=name, requires=requires[name]))
        for name in given
    }
    crm = start(tmp_path, plugins)
    assert crm.host.names() == ["crmkit", "sales", "campaigns", "analytics"]


def test_resolve_order_puts_dependencies_first_and_is_otherwise_alphabetical():
    infos = {
        "warranty": PluginInfo("warranty", requires=("sap",)),
        "sap": PluginInfo("sap"),
        "analytics": PluginInfo("analytics"),
        "campaigns": PluginInfo("campaigns", requires=("sales",)),
        "sales": PluginInfo("sales"),
    }
    assert resolve_order(infos) == ["analytics", "sales", "campaigns", "sap", "warranty"]


# -- a plugin that publishes hookspecs for others --------------------------------------------


NPS_FIELD = {"customer_fields": {"last_nps": {"type": "integer"}}}


@pytest.mark.parametrize("plugins, config, expected", [
    ({"analytics": analytics, "surveys": surveys}, None, {"churn_factors": {"low_nps": 0.8}}),
    # Without surveys, the deployment declares the field itself; nobody answers.
    ({"analytics": analytics}, NPS_FIELD, {"churn_factors": {}}),
], ids=["together", "analytics-alone"])
def test_a_published_hookspec_is_answered_when_the_other_plugin_is_there(
    crm_factory, plugins, config, expected
):
    crm = crm_factory(plugins=plugins, config=config)
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada", attributes={"last_nps": 3})
        assert tx.customers.export_data(ada)["analytics"] == expected


def test_a_plugin_that_answers_a_published_hookspec_works_alone(crm_factory):
    crm = crm_factory(plugins={"surveys": surveys})
    with crm.transaction() as tx:
        ada = tx.customers.create(kind="person", name="Ada", attributes={"last_nps": 3})
        assert sorted(tx.customers.export_data(ada)) == ["crmkit"]
    with pytest.raises(ValueError, match="no hookspec named 'analytics_churn_factors'"):
        crm.host.call("analytics_churn_factors", customer=ada)


def test_an_answer_registered_before_the_hookspec_is_published_is_checked(tmp_path):
    class BadAnswer:
        @hookimpl(optionalhook=True)
        def analytics_churn_factors(self, customr):
            return {}

    # "alerts" sorts before "analytics": it is registered before the hookspec exists.
    error = load_error(tmp_path, {"alerts": BadAnswer(), "analytics": analytics})
    assert error.plugin == "alerts"
    assert "Argument(s) {'customr'} are declared in the hookimpl" in str(error)
    assert "analytics_churn_factors accepts tx, customer" in str(error)


def test_a_failure_in_a_published_hook_names_the_answering_plugin(crm_factory):
    class Grumpy:
        @hookimpl(optionalhook=True)
        def analytics_churn_factors(self):
            raise ZeroDivisionError("no surveys answered yet")

    crm = crm_factory(plugins={"analytics": analytics, "grumpy": Grumpy()})
    with pytest.raises(PluginError) as caught, crm.transaction() as tx:
        tx.customers.export_data(tx.customers.create(kind="person", name="Ada"))
    assert (caught.value.plugin, caught.value.hook) == ("grumpy", "analytics_churn_factors")


@pytest.mark.parametrize("specs, expected", [
    (types.SimpleNamespace(), "did not find any 'crmkit' hooks"),
    (types.SimpleNamespace(customer_created=hookspec(lambda tx: None)),
     "Hook 'customer_created' is already registered"),
], ids=["no-hookspecs", "clash-with-kernel-hook"])
def test_broken_published_hookspecs_name_the_publisher(tmp_path, specs, expected):
    publisher = module("crmkit_pub", PLUGIN_INFO=PluginInfo(name="pub", hookspecs=specs))
    error = load_error(tmp_path, {"pub": publisher})
    assert error.plugin == "pub"
    assert expected in str(error)
    assert "prefix them with the plugin's name" in str(error)


# -- real entry-point discovery --------------------------------------------------------------


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """``installed(entry_point, module_source)`` puts a fake distribution on ``sys.path``."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def install(name: str, source: str, *, dist: str = "fake_plugin", version: str = "0.1",
                module_name: str | None = None) -> str:
        module_name = module_name or f"crmkit_fake_{name}"
        info = site / f"{dist}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
        )
        with (info / "entry_points.txt").open("a", encoding="utf-8") as fh:
            if fh.tell() == 0:
                fh.write("[crmkit]\n")
            fh.write(f"{name} = {module_name}\n")
        (site / f"{module_name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        sys.modules.pop(module_name, None)
        modules.append(module_name)
        return module_name

    yield install
    for name in modules:
        sys.modules.pop(name, None)


FAKE_PLUGIN = """
    from crmkit import PluginInfo, hookimpl

    PLUGIN_INFO = PluginInfo(name="fake", version="0.1", description="A fake plugin")

    @hookimpl
    def register_channels(register):
        register("carrier_pigeon", description="A bird with a note")
"""


def write_config(tmp_path: Path, enabled: list[str]) -> Path:
    path = tmp_path / "crmkit.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///crm.db"\n\n[plugins]\nenabled = {enabled!r}\n'.replace(
            "'", '"'
        ),
        encoding="utf-8",
    )
    return path


def test_discover_finds_an_installed_plugin_without_importing_it(installed):
    module_name = installed("fake", FAKE_PLUGIN)
    found = discover()
    assert "fake" in found
    plugin = found["fake"]
    assert (plugin.name, plugin.module) == ("fake", module_name)
    assert (plugin.distribution, plugin.dist_version) == ("fake_plugin", "0.1")
    assert module_name not in sys.modules


def test_an_enabled_installed_plugin_is_loaded_from_its_entry_point(installed, tmp_path):
    installed("fake", FAKE_PLUGIN)
    crm = Crm.from_config(write_config(tmp_path, ["fake"]), env={})
    assert crm.host.names() == ["crmkit", "fake"]
    assert crm.host.infos["fake"].description == "A fake plugin"
    assert crm.schemas.channels["carrier_pigeon"] == "fake"


def test_an_installed_plugin_that_is_not_enabled_is_not_loaded(installed, tmp_path):
    module_name = installed("fake", FAKE_PLUGIN)
    crm = Crm.from_config(write_config(tmp_path, []), env={})
    assert crm.host.names() == ["crmkit"]
    assert module_name not in sys.modules
    # ... unless the environment enables it.
    crm = Crm.from_config(write_config(tmp_path, []), env={"CRMKIT_PLUGINS_ENABLED": "fake"})
    assert crm.host.names() == ["crmkit", "fake"]


def test_an_enabled_plugin_that_is_not_installed_names_the_key_and_the_file(
    installed, tmp_path
):
    installed("fake", FAKE_PLUGIN)
    config = write_config(tmp_path, ["fake", "nowhere"])
    with pytest.raises(ConfigError) as caught:
        Crm.from_config(config, env={})
    error = caught.value
    assert (error.file, error.key) == (str(config.resolve()), "plugins.enabled")
    message = str(error)
    assert message.startswith(f"{config.resolve()}: plugins.enabled: plugin 'nowhere' is enabled")
    assert "pip install crmkit-nowhere" in message
    assert "fake" in message  # what is installed


def test_a_plugin_module_that_fails_to_import_names_the_plugin_and_its_package(
    installed, tmp_path
):
    installed("broken", "import crmkit_no_such_dependency\n", dist="crmkit_broken",
              version="2.0")
    with pytest.raises(PluginError) as caught:
        Crm.from_config(write_config(tmp_path, ["broken"]), env={})
    error = caught.value
    assert error.plugin == "broken"
    message = str(error)
    assert "its module 'crmkit_fake_broken' failed to import" in message
    assert "ModuleNotFoundError: No module named 'crmkit_no_such_dependency'" in message
    assert "reinstall crmkit_broken or remove 'broken' from plugins.enabled" in message


def test_an_installed_plugin_whose_plugin_info_disagrees_is_refused(installed, tmp_path):
    installed("fake2", FAKE_PLUGIN)  # its PLUGIN_INFO says "fake"
    with pytest.raises(PluginError) as caught:
        Crm.from_config(write_config(tmp_path, ["fake2"]), env={})
    assert caught.value.plugin == "fake2"
    assert "PLUGIN_INFO names it 'fake' but it is registered as 'fake2'" in str(caught.value)


def test_installed_plugins_with_dependencies_load_in_dependency_order(installed, tmp_path):
    installed("zzz_base", """
        from crmkit import PluginInfo
        PLUGIN_INFO = PluginInfo(name="zzz_base")
    """, dist="zzz_base")
    installed("aaa_addon", """
        from crmkit import PluginInfo
        PLUGIN_INFO = PluginInfo(name="aaa_addon", requires=("zzz_base",))
    """, dist="aaa_addon")
    crm = Crm.from_config(write_config(tmp_path, ["aaa_addon", "zzz_base"]), env={})
    assert crm.host.names() == ["crmkit", "zzz_base", "aaa_addon"]

    with pytest.raises(PluginError, match="requires plugin 'zzz_base', which is not enabled"):
        Crm.from_config(write_config(tmp_path, ["aaa_addon"]), env={})


def test_the_plugin_host_can_be_built_without_a_deployment():
    host = PluginHost(KERNEL_VERSION)
    host.register_all({"loyalty": loyalty, "surveys": surveys})
    assert host.names() == ["loyalty", "surveys"]
    fields = [(c.plugin, c.args[0]) for c in host.collect("register_customer_fields")]
    # Contributions are collected in registration order, so the kernel's come first and no
    # plugin can claim a kernel name by registering it earlier.
    assert fields == [
        ("loyalty", "loyalty_tier"), ("loyalty", "loyalty_points"), ("surveys", "last_nps"),
    ]
