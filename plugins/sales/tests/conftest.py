import datetime as dt

import pytest

import crmkit_sales

pytest_plugins = ["crmkit.testing"]


@pytest.fixture(autouse=True)
def _sales(crmkit_plugins):
    """Every deployment of these tests (crm, crm_factory, crmkit_cli) loads the plugin."""
    crmkit_plugins.register(crmkit_sales)


@pytest.fixture
def acme(crm):
    """An organization customer."""
    with crm.transaction() as tx:
        return tx.customers.create(kind="organization", name="Acme GmbH",
                                   email="info@acme.example")


@pytest.fixture
def next_month():
    today = dt.date.today()
    return (today.replace(day=1) + dt.timedelta(days=32)).replace(day=15)
