"""Campaigns and launches: validation, lifecycle, set-based members, sends, suppressions."""

import pytest
from crmkit import NotFound, Rejected, ValidationError
from crmkit.models import Interaction, OutboxEvent
from sqlalchemy import func, select

from crmkit_campaigns import campaigns, consent, launch
from crmkit_campaigns.models import Campaign, Member


def members(crm, code):
    with crm.transaction() as tx:
        campaign = campaigns.get(tx.session, code)
        return {m.customer_id: m for m in tx.session.scalars(
            select(Member).where(Member.campaign_id == campaign.id))}


def sends(crm):
    with crm.transaction() as tx:
        return tx.session.scalar(select(func.count()).select_from(OutboxEvent)
                                 .where(OutboxEvent.name == "campaigns.send"))


def add(crm, code="SPRING", **kwargs):
    kwargs.setdefault("segments", ["everyone"])
    with crm.transaction() as tx:
        return campaigns.add(tx, code=code, name="Spring", channel="email", **kwargs)


def test_bad_input_is_reported_at_once_and_nothing_is_written(crm, everyone):
    with pytest.raises(ValidationError) as info, crm.transaction() as tx:
        campaigns.add(tx, code="bad code!", name="", channel="pigeon", segments=["nope"],
                      currency="EUX", budget="-5", control_percent=95,
                      offer={"kind": "discount", "value": "150", "starts_at": "2026-12-31",
                             "ends_at": "2026-12-01"})
    paths = {issue.path for issue in info.value.issues}
    assert paths == {"code", "name", "channel", "segments[0]", "currency", "budget",
                     "control_percent", "offer.value", "offer.ends_at"}
    assert "ends (2026-12-01" in str(info.value)
    with crm.transaction() as tx:
        assert tx.session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_launch_materialises_members_sends_once_and_logs_interactions(crm, people, everyone,
                                                                      crmkit_recorder):
    add(crm, offer={"kind": "price", "value": "99.90", "code": "SPRING99"}, budget="500")
    with crm.transaction() as tx:
        result = launch.launch(tx, campaigns.get(tx.session, "SPRING"))
    assert result["added"] == 6 and result["sent"] == 6 and result["control"] == 0
    assert sends(crm) == 6
    event = crmkit_recorder.event("campaigns.launched")
    assert event.payload["sent"] == 6
    with crm.transaction() as tx:
        outbound = tx.session.scalars(select(Interaction).where(
            Interaction.kind == "marketing", Interaction.direction == "outbound")).all()
        assert sorted(i.customer_id for i in outbound) == sorted(c.id for c in people)
        assert outbound[0].payload["campaign"] == "SPRING"
        assert campaigns.get(tx.session, "SPRING").state == "running"
        sent = tx.session.scalars(select(OutboxEvent).where(
            OutboxEvent.name == "campaigns.send")).first()
        assert set(sent.payload) >= {"campaign_id", "member_id", "customer_id", "variant"}
    assert {m.status for m in members(crm, "SPRING").values()} == {"sent"}

    # A re-launch adds only newcomers and never sends twice.
    with crm.transaction() as tx:
        newcomer = tx.customers.create(kind="person", name="New")
    with crm.transaction() as tx:
        again = launch.launch(tx, campaigns.get(tx.session, "SPRING"))
        assert launch.launch(tx, campaigns.get(tx.session, "SPRING"))["added"] == 0
    assert (again["added"], again["sent"], again["launch"]) == (1, 1, 2)
    assert sends(crm) == 7
    assert members(crm, "SPRING")[newcomer.id].launch == 2


def test_opt_outs_suppression_lists_and_erased_customers_are_not_targeted(crm, people,
                                                                         everyone):
    add(crm)
    with crm.transaction() as tx:
        consent.set_consent(tx, people[0].id, "email", False)     # out of e-mail
        consent.set_consent(tx, people[1].id, "*", False)         # out of everything
        consent.set_consent(tx, people[2].id, "*", False)         # out of everything ...
        consent.set_consent(tx, people[2].id, "email", True)      # ... but e-mail
        consent.set_consent(tx, people[3].id, "sms", False)       # out of sms only
        consent.add_suppressions(tx, "default", [people[4].id])
        tx.customers.erase(people[5].id)
    with crm.transaction() as tx:
        launch.launch(tx, campaigns.get(tx.session, "SPRING"))
    assert sorted(members(crm, "SPRING")) == [people[2].id, people[3].id]


def test_configured_suppression_lists_only(crm_factory, people):
    crm = crm_factory(config={"plugin": {"campaigns": {"suppression_lists": ["legal"]}}})
    with crm.transaction() as tx:
        from crmkit_campaigns import segments
        segments.add(tx, "everyone", {"field": "customer.id", "op": "gte", "value": 0})
        consent.add_suppressions(tx, "legal", [people[0].id])
        consent.add_suppressions(tx, "sales-says-no", [people[1].id])
        campaign = campaigns.add(tx, code="S", name="S", channel="email",
                                 segments=["everyone"])
        launch.launch(tx, campaign)
    assert people[0].id not in members(crm, "S") and people[1].id in members(crm, "S")


def test_control_group_and_variants_are_stable_splits(crm, everyone):
    with crm.transaction() as tx:
        for i in range(300):
            tx.customers.create(kind="person", name=f"P{i}")
    add(crm, control_percent=20, variants=["A", "B"])
    with crm.transaction() as tx:
        result = launch.launch(tx, campaigns.get(tx.session, "SPRING"))
    rows = members(crm, "SPRING").values()
    control = [m for m in rows if m.variant == "control"]
    assert result["control"] == len(control) and 40 <= len(control) <= 80
    assert {m.status for m in control} == {"control"}
    assert {m.variant for m in rows} == {"A", "B", "control"}
    assert sends(crm) == 306 - len(control)  # 300 + the 6 people


def test_lifecycle_refuses_launching_a_completed_campaign_and_changes_nothing(crm, people,
                                                                             everyone):
    add(crm)
    with crm.transaction() as tx:
        campaign = campaigns.get(tx.session, "SPRING")
        campaigns.move(tx, campaign, "schedule")
        launch.launch(tx, campaign)
        campaigns.move(tx, campaign, "complete")
    with crm.transaction() as tx:
        tx.customers.create(kind="person", name="Late")
    with pytest.raises(Rejected, match="completed"), crm.transaction() as tx:
        launch.launch(tx, campaigns.get(tx.session, "SPRING"))
    assert sends(crm) == 6
    with crm.transaction() as tx:
        campaign = campaigns.get(tx.session, "SPRING")
        history = [s.transition for s in tx.workflows.history(campaign.workflow_instance_id)]
        assert history == ["start", "schedule", "launch", "complete"]
        assert campaign.state == "completed" and campaign.closed_at is not None
    with pytest.raises(NotFound), crm.transaction() as tx:
        campaigns.get(tx.session, "NOPE")


def test_firing_launch_through_the_workflow_engine_also_launches(crm, people, everyone):
    campaign = add(crm)
    with crm.transaction() as tx:
        tx.workflows.fire(campaign.workflow_instance_id, "launch")
    assert len(members(crm, "SPRING")) == 6


def test_a_campaign_that_has_ended_is_not_launched(crm, people, everyone):
    add(crm, starts_at="2020-01-01", ends_at="2020-02-01")
    with pytest.raises(Rejected, match="ended"), crm.transaction() as tx:
        launch.launch(tx, campaigns.get(tx.session, "SPRING"))
    assert members(crm, "SPRING") == {}
    with crm.transaction() as tx:
        assert campaigns.get(tx.session, "SPRING").state == "draft"


def test_sends_are_delivered_from_the_outbox(crm, people, everyone, crmkit_recorder):
    add(crm, control_percent=0)
    with crm.transaction() as tx:
        launch.launch(tx, campaigns.get(tx.session, "SPRING"))
    crm.dispatcher.run_once(limit=100)
    delivered = crmkit_recorder.deliveries("campaigns.send")
    customer_ids = sorted({d.event.payload["customer_id"] for d in delivered})
    assert customer_ids == sorted(c.id for c in people)
    assert {d.event.payload["code"] for d in delivered} == {"SPRING"}
