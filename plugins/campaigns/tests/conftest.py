import pytest

import crmkit_campaigns

pytest_plugins = ["crmkit.testing"]


@pytest.fixture(autouse=True)
def _campaigns(crmkit_plugins):
    """Every deployment of these tests (crm, crm_factory, crmkit_cli) loads the plugin."""
    crmkit_plugins.register(crmkit_campaigns)
