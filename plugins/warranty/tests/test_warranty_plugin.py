"""The plugin is installed, loads, migrates, and registers its workflow and kinds."""

import pytest
from crmkit import ConfigError
from crmkit.plugins import discover

import crmkit_warranty


def test_the_entry_point_is_discovered():
    installed = discover()["warranty"]
    assert installed.distribution == "crmkit_warranty"
    assert installed.load() is crmkit_warranty


def test_the_claim_workflow_is_registered(crm):
    definition = crm.workflows.get("warranty_claim")
    assert definition.initial == "reported"
    assert set(definition.final) == {"closed", "rejected"}
    assert {"triage", "order_parts", "repair", "replace", "refund", "resolve", "close",
            "reject", "triage_overdue"} <= {t.name for t in definition.transitions}


def test_a_bad_config_table_is_refused(crm_factory):
    with pytest.raises(ConfigError) as info:
        crm_factory(config={"plugin": {"warranty": {"triage_business_days": 0}}})
    assert info.value.key == "plugin.warranty.triage_business_days"
