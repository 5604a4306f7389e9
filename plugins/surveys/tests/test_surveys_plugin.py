"""Tests of crmkit-surveys, on SQLite and every database in CRMKIT_TEST_DATABASE_URLS."""

import json

import pytest
from crmkit import ConfigError
from crmkit.plugins import discover

import crmkit_surveys


def test_the_entry_point_is_discovered():
    installed = discover()["surveys"]
    assert installed.distribution == "crmkit_surveys"
    assert installed.load() is crmkit_surveys


def test_a_new_customer_gets_a_welcome_note(crm, crmkit_recorder):
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Ada Lovelace")
    assert crmkit_recorder.call("customer_created").plugins == ("surveys",)
    event = crmkit_recorder.event("surveys.note_added")
    assert event.payload == {"customer_id": customer.id, "text": "Welcome!"}


def test_the_note_rolls_back_with_the_customer(crm, crmkit_recorder):
    with pytest.raises(RuntimeError), crm.transaction() as tx:
        tx.customers.create(kind="person", name="Ada Lovelace")
        raise RuntimeError("changed my mind")
    assert crmkit_recorder.events() == []


def test_the_welcome_note_is_configurable(crm_factory, crmkit_cli):
    crm = crm_factory(config={"plugin": {"surveys": {"welcome_note": "Hello"}}})
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Grace Hopper")
    rows = json.loads(crmkit_cli.ok("surveys", "notes", str(customer.id), "--json").stdout)
    assert [row["text"] for row in rows] == ["Hello"]


def test_a_bad_config_table_is_refused(crm_factory):
    with pytest.raises(ConfigError) as info:
        crm_factory(config={"plugin": {"surveys": {"welcome_note": ""}}})
    assert info.value.key == "plugin.surveys.welcome_note"


def test_the_cli_reports_a_missing_customer(crmkit_cli):
    crmkit_cli.fails("surveys", "notes", "999999", message="no customer with id 999999")


def test_export_and_erase_answer_for_the_notes(crm):
    with crm.transaction() as tx:
        customer = tx.customers.create(kind="person", name="Alan Turing")
    with crm.transaction() as tx:
        exported = tx.customers.export_data(customer.id)["surveys"]
        assert [note["text"] for note in exported["notes"]] == ["Welcome!"]
        crm.host.erase_customer_data(tx=tx, customer=customer)
    with crm.transaction() as tx:
        assert "surveys" not in tx.customers.export_data(customer.id)
