"""The plugin as crmkit sees it: entry point, config schema, workflow, migrations."""

import pytest
from crmkit import ConfigError
from crmkit.plugins import discover
from sqlalchemy import inspect

import crmkit_sales


def test_the_entry_point_is_discovered():
    installed = discover()["sales"]
    assert installed.distribution == "crmkit_sales"
    assert installed.load() is crmkit_sales


def test_tables_come_from_the_plugins_own_migration_branch(crm):
    names = set(inspect(crm.engine).get_table_names())
    assert {"sales_lead", "sales_opportunity", "sales_opportunity_line",
            "sales_task"} <= names


def test_the_pipeline_is_a_registered_workflow(crm):
    definition = crm.workflows.get("sales_pipeline")
    assert definition.subject == "sales_opportunity"
    assert definition.states == ("qualification", "needs_analysis", "proposal", "negotiation",
                                 "won", "lost")
    assert definition.owner == "plugin sales"


def test_a_bad_config_table_is_refused(crm_factory):
    with pytest.raises(ConfigError) as info:
        crm_factory(config={"plugin": {"sales": {"stages": {"proposal": {
            "probability": 150, "category": "pipeline"}}}}})
    assert info.value.key.startswith("plugin.sales.stages")
    with pytest.raises(ConfigError):
        crm_factory(config={"plugin": {"sales": {"lost_reason": ["price"]}}})
