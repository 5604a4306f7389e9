"""The plugin as a whole: discovery, config, migrations, data-subject rights."""

import pytest
from crmkit import ConfigError
from crmkit.plugins import discover

import crmkit_campaigns
from crmkit_campaigns import campaigns, consent, launch, responses


def test_the_entry_point_is_discovered():
    installed = discover()["campaigns"]
    assert installed.distribution == "crmkit_campaigns"
    assert installed.load() is crmkit_campaigns


def test_a_bad_config_table_is_refused(crm_factory):
    with pytest.raises(ConfigError) as info:
        crm_factory(config={"plugin": {"campaigns": {"currency": "euro"}}})
    assert info.value.key.startswith("plugin.campaigns")


def test_the_lifecycle_workflow_is_registered(crm):
    with crm.transaction() as tx:
        definition = tx.workflows.definitions.get("campaign")
    assert definition.initial == "draft"
    assert set(definition.final) == {"completed", "cancelled"}


def test_export_and_erase_answer_for_memberships_and_consent(crm, people, everyone):
    customer = people[0]
    with crm.transaction() as tx:
        campaign = campaigns.add(tx, code="C1", name="One", channel="email",
                                 segments=[everyone])
        launch.launch(tx, campaign)
        consent.set_consent(tx, customer.id, "sms", False)
    with crm.transaction() as tx:
        exported = tx.customers.export_data(customer.id)["campaigns"]
        assert [m["campaign"] for m in exported["memberships"]] == ["C1"]
        assert exported["consent"][0]["channel"] == "sms"
        tx.customers.erase(customer.id)
    with crm.transaction() as tx:
        exported = tx.customers.export_data(customer.id)["campaigns"]
        # memberships stay (anonymised customer) so figures do not change; consent is gone
        assert exported["consent"] == []
        assert exported["suppression_lists"] == ["erased"]
        assert responses.member_of(tx, campaigns.get(tx.session, "C1"), customer.id)


def test_the_migration_creates_what_the_models_declare(crm):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from crmkit.db import Base

    with crm.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, Base.metadata)

    def ours(entry):
        text = repr(entry)
        return "campaigns_" in text

    assert [d for d in diff if ours(d)] == []
