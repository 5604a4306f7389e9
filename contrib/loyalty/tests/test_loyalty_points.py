"""Earning points and reaching tiers, in the kernel's transactions."""

from decimal import Decimal

import pytest

from crmkit_loyalty.points import balance


def purchase(tx, customer, amount, currency="EUR", kind="purchase"):
    return tx.interactions.log(customer, channel="web", kind=kind, summary="Order",
                               amount=amount, currency=currency)


@pytest.fixture
def customer(crm):
    with crm.transaction() as tx:
        return tx.customers.create(kind="person", name="Ada Lovelace")


def points_of(crm, customer):
    with crm.session() as session:
        return balance(session, customer.id)


def test_a_purchase_earns_points_rounded_down_and_says_so(crm, customer, crmkit_recorder):
    with crm.transaction() as tx:
        interaction = purchase(tx, customer, "99.99")
    assert points_of(crm, customer) == 99
    event = crmkit_recorder.event("loyalty.points_awarded")
    assert event.payload == {"customer_id": customer.id, "interaction_id": interaction.id,
                             "points": 99, "total": 99}
    assert crmkit_recorder.call("interaction_logged").plugins == ("loyalty",)


def test_points_add_up_across_purchases(crm, customer):
    for amount in ("10", "20.50", "5"):
        with crm.transaction() as tx:
            purchase(tx, customer, amount)
    assert points_of(crm, customer) == 35


@pytest.mark.parametrize(("kind", "amount"), [
    ("support", "100"),      # not a kind that earns points
    ("purchase", "-40"),     # a refund takes nothing back, earns nothing
    ("purchase", "0.99"),    # less than a point
    ("purchase", None),      # no amount
])
def test_what_earns_nothing(crm, customer, crmkit_recorder, kind, amount):
    with crm.transaction() as tx:
        purchase(tx, customer, amount, currency="EUR" if amount else None, kind=kind)
    assert points_of(crm, customer) == 0
    assert crmkit_recorder.events("loyalty.points_awarded") == []


def test_rates_come_from_the_config(crm_factory):
    crm = crm_factory(config={"plugin": {"loyalty": {
        "points_per_unit": 2, "currencies": {"JPY": 0.01, "CHF": 0},
    }}})
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Grace Hopper")
        purchase(tx, customer, "10", "EUR")     # 2 per unit: 20
        purchase(tx, customer, "1500", "JPY")   # 0.01 per yen: 15
        purchase(tx, customer, "500", "CHF")    # excluded: 0
    assert points_of(crm, customer) == 35


def test_reaching_a_tier_emits_tier_changed(crm_factory, crmkit_recorder):
    crm = crm_factory(config={"plugin": {"loyalty": {"tiers": {"member": 0, "vip": 100}}}})
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Alan Turing")
    with crm.transaction() as tx:
        purchase(tx, customer, "60")
    assert crmkit_recorder.events("loyalty.tier_changed") == []
    with crm.transaction() as tx:
        purchase(tx, customer, "40")
    changed = crmkit_recorder.event("loyalty.tier_changed")
    assert changed.payload == {"customer_id": customer.id, "before": "member", "after": "vip"}


def test_points_roll_back_with_the_transaction(crm, customer, crmkit_recorder):
    with pytest.raises(RuntimeError), crm.transaction() as tx:
        purchase(tx, customer, "500")
        raise RuntimeError("the order was cancelled before commit")
    assert points_of(crm, customer) == 0
    assert crmkit_recorder.events() == []


def test_export_and_erase_answer_for_the_account(crm, customer):
    with crm.transaction() as tx:
        purchase(tx, customer, Decimal("600"))
    with crm.transaction() as tx:
        exported = tx.customers.export_data(customer.id)
    assert exported["loyalty"]["points"] == 600
    assert exported["loyalty"]["tier"] == "silver"
    with crm.transaction() as tx:
        crm.host.erase_customer_data(tx=tx, customer=tx.customers.get(customer.id))
    with crm.transaction() as tx:
        assert "loyalty" not in tx.customers.export_data(customer.id)
    assert points_of(crm, customer) == 0
