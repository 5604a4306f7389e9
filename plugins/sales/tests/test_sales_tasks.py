"""Follow-ups: scheduling, completion on the timeline, overdue events; DSR hooks."""

import datetime as dt

import pytest
from crmkit import Conflict, NotFound, ValidationError

from crmkit_sales import leads, opportunities, tasks


def test_a_done_call_is_logged_on_the_customers_timeline(crm, acme, crmkit_recorder):
    with crm.transaction() as tx:
        opp = opportunities.create(tx, customer=acme.id, title="Deal", amount="10",
                                   close_date="2026-12-01")
        task = tasks.add(tx, kind="call", title="Discuss the quote", due="2026-12-01T09:00",
                         owner="bob", opportunity=opp.id)
        assert task.customer_id == acme.id
        assert task.due_at == dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    with crm.transaction() as tx:
        done = tasks.complete(tx, task.id, "they accept")
        interaction = tx.interactions.get(done.interaction_id)
        assert (interaction.channel, interaction.kind, interaction.summary, interaction.actor,
                interaction.payload) == (
            "phone", "sales_activity", "Discuss the quote: they accept", "bob",
            {"task_id": task.id, "event": "call", "opportunity_id": opp.id})
    with pytest.raises(Conflict, match="already done"), crm.transaction() as tx:
        tasks.complete(tx, task.id)
    assert crmkit_recorder.event("sales.task_done").payload["interaction_id"] == interaction.id


@pytest.mark.parametrize("kwargs, error, message", [
    ({"kind": "fax"}, ValidationError, "kind: 'fax' is not one of"),
    ({"due": "tomorrow"}, ValidationError, "due: 'tomorrow' is not a date"),
    ({"customer": None}, ValidationError, "exactly one lead, opportunity or customer"),
    ({"lead": 1}, ValidationError, "exactly one"),
    ({"customer": 999}, NotFound, "no customer with id 999"),
])
def test_bad_follow_ups_are_refused(crm, acme, kwargs, error, message):
    args = {"kind": "task", "title": "Send brochure", "due": "2026-12-01",
            "customer": acme.id, **kwargs}
    with pytest.raises(error, match=message), crm.transaction() as tx:
        tasks.add(tx, **args)
    with crm.transaction() as tx:
        assert tasks.list_(tx, status=None) == []


def test_overdue_follow_ups_are_listed_and_announced_once(crm, acme, crmkit_recorder):
    with crm.transaction() as tx:
        late = tasks.add(tx, kind="email", title="Send contract", due="2020-01-01",
                         owner="alice", customer=acme.id)
        tasks.add(tx, kind="task", title="Later", due="2999-01-01", customer=acme.id)
    with crm.transaction() as tx:
        assert [t.id for t in tasks.notify_overdue(tx)] == [late.id]
    with crm.transaction() as tx:
        assert tasks.notify_overdue(tx) == []
        assert [t.id for t in tasks.list_(tx, overdue=True)] == [late.id]
    (event,) = crmkit_recorder.events("sales.task_overdue")
    assert event.payload["owner"] == "alice" and event.payload["customer_id"] == acme.id


def test_export_and_erase_answer_for_leads_and_tasks(crm):
    with crm.transaction() as tx:
        lead = leads.capture(tx, {"source": "web", "contact_name": "Jana Novak",
                                  "email": "jana@example.com", "phone": "+371 2000000"})
        result = leads.convert(tx, lead.id, amount="500")
        tasks.add(tx, kind="call", title="Call Jana about her order", due="2026-01-01",
                  customer=result.customer_id)
    with crm.transaction() as tx:
        exported = tx.customers.export_data(result.customer_id)["sales"]
        assert exported["leads"][0]["email"] == "jana@example.com"
        assert exported["opportunities"][0]["amount"] == "500.00"
        assert exported["tasks"][0]["title"] == "Call Jana about her order"
        tx.customers.erase(result.customer_id)
    with crm.transaction() as tx:
        lead = leads.get(tx, lead.id)
        assert (lead.contact_name, lead.email, lead.phone) == (None, None, None)
        exported = tx.customers.export_data(result.customer_id)["sales"]
        assert exported["tasks"][0]["title"] == "(erased)"


def test_the_worker_announces_overdue_follow_ups_by_itself(crm, acme, crmkit_recorder):
    from crmkit.worker import run_periodic

    with crm.transaction() as tx:
        late = tasks.add(tx, kind="call", title="Call back", due="2020-01-01", customer=acme.id)
    run_periodic(crm)  # what every `crmkit worker` does once per events.periodic_seconds
    run_periodic(crm)
    (event,) = crmkit_recorder.events("sales.task_overdue")
    assert event.payload["task_id"] == late.id
