"""Fixtures of the surveys tests: every deployment loads the plugin."""

import copy
from pathlib import Path

import pytest

import crmkit_surveys
from crmkit_surveys import catalog, invitations
from crmkit_surveys.settings import Settings

pytest_plugins = ["crmkit.testing"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: A small survey with one question of every kind the reports score.
DOC = {
    "key": "service",
    "title": "Service feedback",
    "pages": [
        {"title": "Overall", "questions": [
            {"id": "recommend", "type": "nps", "text": "Recommend us?", "required": True},
            {"id": "why", "type": "text", "text": "Why so low?",
             "show_if": {"question": "recommend", "in": [0, 1, 2, 3, 4, 5, 6]}},
        ]},
        {"questions": [
            {"id": "satisfied", "type": "rating", "text": "Satisfied?", "required": True,
             "metric": "csat"},
            {"id": "effort", "type": "scale", "text": "Easy?", "min": 1, "max": 7,
             "metric": "ces"},
            {"id": "channel", "type": "single_choice", "text": "How?",
             "choices": ["phone", "mail"]},
            {"id": "topics", "type": "multiple_choice", "text": "About?",
             "choices": ["a", "b", "c"], "max_choices": 2},
            {"id": "fixed", "type": "yes_no", "text": "Fixed?"},
            {"id": "team", "type": "matrix", "text": "Team", "rows": ["speed", "tone"],
             "columns": ["bad", "ok", "good"]},
        ]},
    ],
}

EMPLOYEE_DOC = {
    "key": "pulse", "title": "Pulse", "audience": "employees", "anonymous": True,
    "pages": [{"questions": [
        {"id": "enps", "type": "nps", "text": "Recommend us as an employer?", "required": True},
        {"id": "idea", "type": "text", "text": "One idea"},
    ]}],
}


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
