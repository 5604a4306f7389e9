import pytest

import crmkit_dataquality

pytest_plugins = ["crmkit.testing"]


@pytest.fixture(autouse=True)
def _dataquality(crmkit_plugins):
    """Every deployment of these tests (crm, crm_factory, crmkit_cli) loads the plugin."""
    crmkit_plugins.register(crmkit_dataquality)
