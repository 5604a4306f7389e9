"""Fixtures of the surveys tests: every deployment loads the plugin."""

import copy

import pytest
from surveys_samples import DOC

import crmkit_surveys
from crmkit_surveys import catalog, invitations
from crmkit_surveys.settings import Settings

pytest_plugins = ["crmkit.testing"]


@pytest.fixture(autouse=True)
def _surveys(crmkit_plugins):
    """Every deployment of these tests (crm, crm_factory, crmkit_cli) loads the plugin."""
    crmkit_plugins.register(crmkit_surveys)


@pytest.fixture
def doc():
    """A fresh copy of :data:`DOC` to change at will."""
    return copy.deepcopy(DOC)


@pytest.fixture
def people(crm):
    """Four customers: ids of Ann (org), Bob, Cy, Di (persons)."""
    with crm.transaction() as tx:
        made = [tx.customers.create(kind="organization", name="Ann Ltd", email="ann@x.example"),
                tx.customers.create(kind="person", name="Bob", email="bob@x.example"),
                tx.customers.create(kind="person", name="Cy"),
                tx.customers.create(kind="person", name="Di", tags=["vip"])]
        return [c.id for c in made]


@pytest.fixture
def publish(crm):
    """``publish(document)``: add and publish a survey; returns its key."""
    def run(document=None, target=None):
        target = target or crm
        with target.transaction() as tx:
            catalog.add(tx, copy.deepcopy(document or DOC))
            return catalog.publish(tx, (document or DOC)["key"]).key
    return run


@pytest.fixture
def invite(crm):
    """``invite(key, customer_ids)``: send; returns the tokens in order."""
    def run(key, customer_ids, target=None, **kwargs):
        target = target or crm
        with target.transaction() as tx:
            survey = catalog.get(tx.session, key, published=True)
            recipients = [invitations.Recipient(customer_id=i, segment="customers")
                          for i in customer_ids]
            sent = invitations.send(tx, survey, recipients, Settings.of(target), **kwargs)
            return [s.token for s in sent]
    return run
