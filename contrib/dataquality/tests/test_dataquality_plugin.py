"""The plugin as crmkit sees it: discovery, its branch, its config table."""

import pytest
from crmkit import ConfigError
from crmkit.migrate import status
from crmkit.plugins import discover

import crmkit_dataquality


def test_the_entry_point_is_discovered():
    installed = discover()["dataquality"]
    assert installed.distribution == "crmkit_dataquality"
    assert installed.load() is crmkit_dataquality


def test_its_branch_is_at_head_on_the_test_database(crm):
    assert {s.branch: s.at_head for s in status(crm)}["dataquality"]


@pytest.mark.parametrize(("section", "key"), [
    ({"default_country_code": "+49"}, "plugin.dataquality.default_country_code"),
    ({"flag_duplicates": "yes"}, "plugin.dataquality.flag_duplicates"),
    ({"normalise_phones": True}, "plugin.dataquality"),
])
def test_a_bad_config_table_is_refused_with_its_key(crm_factory, section, key):
    with pytest.raises(ConfigError) as info:
        crm_factory(config={"plugin": {"dataquality": section}})
    assert info.value.key == key
