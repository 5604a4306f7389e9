import pytest

import crmkit_campaigns

pytest_plugins = ["crmkit.testing"]


@pytest.fixture(autouse=True)
def _campaigns(crmkit_plugins):
    """Every deployment of these tests (crm, crm_factory, crmkit_cli) loads the plugin."""
    crmkit_plugins.register(crmkit_campaigns)


@pytest.fixture
def people(crm):
    """Six customers: orgs 0-2 in LV, persons 3-5; 0 and 3 bought, 1 complained twice."""
    with crm.transaction() as tx:
        made = []
        for i in range(6):
            org = i < 3
            made.append(tx.customers.create(
                kind="organization" if org else "person", name=f"Customer {i}",
                email=f"c{i}@example.com", tags=["newsletter"] if i % 2 == 0 else [],
                addresses=[{"country": "LV" if org else "DE", "city": "Riga"}] if org else [],
            ))
        for i in (0, 3):
            tx.interactions.log(made[i], channel="web", kind="purchase", summary="Order",
                                amount="100.00", currency="EUR")
        for _ in range(2):
            tx.interactions.log(made[1], channel="phone", kind="complaint", summary="Broken")
    return made


@pytest.fixture
def everyone(crm, people):
    """A segment of every customer; returns its name."""
    from crmkit_campaigns import segments

    with crm.transaction() as tx:
        segments.add(tx, "everyone", {"field": "customer.id", "op": "gte", "value": 0})
    return "everyone"
