import pytest

import crmkit_surveys

pytest_plugins = ["crmkit.testing"]


@pytest.fixture(autouse=True)
def _surveys(crmkit_plugins):
    """Every deployment of these tests (crm, crm_factory, crmkit_cli) loads the plugin."""
    crmkit_plugins.register(crmkit_surveys)
