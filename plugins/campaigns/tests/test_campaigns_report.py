"""Analysis: rates, revenue, cost per response, ROI, per variant, lift against control."""

import csv
import io

from sqlalchemy import select

from crmkit_campaigns import campaigns, launch, report, responses
from crmkit_campaigns.models import Member


def test_report_per_variant_with_lift_against_control(crm, everyone):
    with crm.transaction() as tx:
        for i in range(200):
            tx.customers.create(kind="person", name=f"P{i}")
    with crm.transaction() as tx:
        campaign = campaigns.add(tx, code="AB", name="A/B", channel="email",
                                 segments=[everyone], control_percent=20,
                                 variants=["A", "B"], budget="1000", cost="400")
        launch.launch(tx, campaign)
    with crm.transaction() as tx:
        campaign = campaigns.get(tx.session, "AB")
        rows = tx.session.scalars(select(Member).order_by(Member.customer_id)).all()
        treated = [m for m in rows if m.variant != "control"]
        control = [m for m in rows if m.variant == "control"]
        for m in treated[:20]:
            responses.record(tx, campaign, m.customer_id, "converted", revenue="50")
        for m in treated[20:30]:
            responses.record(tx, campaign, m.customer_id, "responded")
        for m in control[:2]:
            tx.interactions.log(m.customer_id, channel="web", kind="purchase",
                                summary="Order", amount="10", currency="EUR")
    with crm.transaction() as tx:
        analysis = report.analyse(tx.session, campaigns.get(tx.session, "AB"))
    total, ctrl = analysis["total"], analysis["control"]
    assert total["members"] == len(treated) and total["sent"] == len(treated)
    assert (total["responded"], total["converted"]) == (30, 20)
    assert total["revenue"] == "1000.00" and total["cost"] == "400.00"
    assert total["roi"] == "1.5000"                    # (1000 - 400) / 400
    assert total["cost_per_response"] == "13.33"       # 400 / 30
    assert total["response_rate"] == f"{30 / len(treated):.4f}"
    assert ctrl["members"] == len(control) and ctrl["sent"] == 0
    assert ctrl["converted"] == 2 and ctrl["revenue"] == "20.00"
    base = 2 / len(control)
    expected = (20 / len(treated) - base) / base
    assert abs(float(total["lift"]) - expected) < 0.01
    assert {v["variant"] for v in analysis["variants"]} == {"A", "B"}
    costs = sum(float(v["cost"]) for v in analysis["variants"])
    assert abs(costs - 400) < 0.02
    parsed = list(csv.DictReader(io.StringIO(report.to_csv(report.rows_of(analysis)))))
    assert [r["variant"] for r in parsed] == ["all", "A", "B", "control"]


def test_report_of_a_campaign_without_members(crm, everyone):
    with crm.transaction() as tx:
        campaign = campaigns.add(tx, code="EMPTY", name="Empty", channel="sms",
                                 segments=[everyone])
        analysis = report.analyse(tx.session, campaign)
    assert analysis["total"]["members"] == 0 and analysis["total"]["roi"] is None
    assert analysis["control"] is None
