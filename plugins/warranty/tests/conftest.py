import pytest

import crmkit_warranty

pytest_plugins = ["crmkit.testing"]


@pytest.fixture(autouse=True)
def _warranty(crmkit_plugins):
    """Every deployment of these tests (crm, crm_factory, crmkit_cli) loads the plugin."""
    crmkit_plugins.register(crmkit_warranty)


@pytest.fixture
def catalogue(crm):
    """Two products on two lines, and three customers."""
    from crmkit_warranty import catalog

    with crm.transaction() as tx:
        catalog.add_product(tx, sku="WM-100", name="Washer 100", product_line="laundry",
                            warranty_months=24, extended_months=12)
        catalog.add_product(tx, sku="DW-200", name="Dishwasher 200", product_line="kitchen",
                            warranty_months=12)
        people = [tx.customers.create(kind="person", name=n) for n in ("Ann", "Bob", "Cy")]
    return [c.id for c in people]
