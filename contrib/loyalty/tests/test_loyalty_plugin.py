"""The plugin as crmkit sees it: discovery, declaration, hooks, migrations, config."""

import pytest
from crmkit import ConfigError
from crmkit.migrate import status
from crmkit.plugins import discover

import crmkit_loyalty


def test_the_entry_point_is_discovered():
    installed = discover()["loyalty"]
    assert installed.distribution == "crmkit_loyalty"
    assert installed.load() is crmkit_loyalty


def test_plugin_info_matches_the_distribution():
    from importlib.metadata import version

    assert crmkit_loyalty.PLUGIN_INFO.name == "loyalty"
    assert crmkit_loyalty.PLUGIN_INFO.version == version("crmkit-loyalty")


def test_its_branch_is_at_head_on_the_test_database(crm):
    branches = {s.branch: s for s in status(crm)}
    assert branches["loyalty"].at_head
    assert branches["loyalty"].current == "loyalty_0001"


@pytest.mark.parametrize(("section", "key"), [
    ({"point_per_unit": 2}, "plugin.loyalty"),
    ({"points_per_unit": -1}, "plugin.loyalty.points_per_unit"),
    ({"tiers": {"Gold": 10}}, "plugin.loyalty.tiers"),
    ({"currencies": {"euro": 1}}, "plugin.loyalty.currencies"),
    ({"kinds": []}, "plugin.loyalty.kinds"),
])
def test_a_bad_config_table_is_refused_with_its_key(crm_factory, section, key):
    with pytest.raises(ConfigError) as info:
        crm_factory(config={"plugin": {"loyalty": section}})
    assert info.value.key == key
