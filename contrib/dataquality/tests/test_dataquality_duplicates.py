"""Normalisation on save and duplicate flags, in the kernel's transactions."""

import json

import pytest
from crmkit import ValidationError
from crmkit.models import Customer


def create(crm, name, **values):
    with crm.transaction() as tx:
        return tx.customers.create(kind="person", name=name, **values)


def test_values_are_normalised_before_they_are_written(crm_factory):
    crm = crm_factory(config={"plugin": {"dataquality": {"default_country_code": "49"}}})
    customer = create(crm, "Ann", email="mailto:Ann@Example.com", phone="030 123 45 67")
    with crm.session() as session:
        stored = session.get(Customer, customer.id)
        assert (stored.email, stored.phone) == ("ann@example.com", "+49301234567")


def test_normalisation_can_be_switched_off(crm_factory):
    crm = crm_factory(config={"plugin": {"dataquality": {"normalize_phones": False}}})
    assert create(crm, "Ann", phone="030 1234567").phone == "030 1234567"


def test_what_cannot_be_normalised_is_still_validated_by_the_kernel(crm):
    with pytest.raises(ValidationError) as info:
        create(crm, "Ann", phone="call me maybe")
    assert info.value.plugin is None  # the kernel's schema refused it, not the plugin
    assert [issue.path for issue in info.value.issues] == ["phone"]


def test_a_shared_email_or_phone_is_flagged_with_an_event(crm, crmkit_recorder):
    first = create(crm, "Ann", email="ann@example.com", phone="+49 30 1234567")
    second = create(crm, "Ann B.", email="ANN@example.com")
    third = create(crm, "A. Smith", phone="0049 30 123-4567")
    events = [e.payload for e in crmkit_recorder.events("dataquality.duplicate_suspected")]
    assert events == [
        {"customer_id": second.id, "duplicate_of_id": first.id, "reason": "email"},
        {"customer_id": third.id, "duplicate_of_id": first.id, "reason": "phone"},
    ]


def test_an_update_that_creates_a_duplicate_is_flagged_once(crm, crmkit_recorder):
    first = create(crm, "Ann", email="ann@example.com")
    second = create(crm, "Bob", email="bob@example.com")
    for _ in range(2):
        with crm.transaction() as tx:
            tx.customers.update(second.id, email="ann@example.com")
            tx.customers.update(second.id, name="Bob Again")  # no e-mail change: no check
    flags = crmkit_recorder.events("dataquality.duplicate_suspected")
    assert [(e.payload["customer_id"], e.payload["duplicate_of_id"]) for e in flags] == [
        (second.id, first.id)
    ]


def test_flagging_can_be_switched_off(crm_factory, crmkit_recorder):
    crm = crm_factory(config={"plugin": {"dataquality": {"flag_duplicates": False}}})
    create(crm, "Ann", email="ann@example.com")
    create(crm, "Ann B.", email="ann@example.com")
    assert crmkit_recorder.events("dataquality.duplicate_suspected") == []


def test_the_cli_lists_duplicates(crm, crmkit_cli):
    first = create(crm, "Ann", email="ann@example.com")
    second = create(crm, "Ann B.", email="ann@example.com")
    create(crm, "Unrelated", email="zed@example.com")
    rows = json.loads(crmkit_cli.ok("dataquality", "duplicates", "--json").stdout)
    assert [(r["customer_id"], r["name"], r["duplicate_of_id"], r["duplicate_of_name"],
             r["reason"]) for r in rows] == [(second.id, "Ann B.", first.id, "Ann", "email")]
    assert "Ann B." in crmkit_cli.ok("dataquality", "duplicates").stdout
    none = crmkit_cli.ok("dataquality", "duplicates", "--customer", "999999").stdout
    assert "No suspected duplicates." in none


def test_export_and_erase_answer_for_the_flags(crm):
    first = create(crm, "Ann", email="ann@example.com")
    second = create(crm, "Ann B.", email="ann@example.com")
    with crm.transaction() as tx:
        exported = tx.customers.export_data(first.id)["dataquality"]
    assert exported["duplicates"][0]["customer_id"] == second.id
    with crm.transaction() as tx:
        crm.host.erase_customer_data(tx=tx, customer=tx.customers.get(second.id))
    with crm.transaction() as tx:
        assert "dataquality" not in tx.customers.export_data(first.id)
