"""Reports: pipeline, forecast, win rate and cycle, sales by domain."""

import datetime as dt

import pytest
from crmkit import ValidationError
from sqlalchemy import update

from crmkit_sales import opportunities, reports
from crmkit_sales.models import Opportunity


@pytest.fixture
def deals(crm, acme):
    """Four deals: two open (proposal, qualification), one won and one lost."""
    spec = [("alice", "10000", "2026-11-20", "proposal", None),
            ("bob", "4000", "2026-12-10", "qualification", None),
            ("alice", "2500", "2026-10-01", None, "won"),
            ("bob", "800", "2026-10-05", None, "lost")]
    ids = []
    with crm.transaction() as tx:
        for owner, amount, close, stage, outcome in spec:
            opp = opportunities.create(
                tx, customer=acme.id, title=f"{owner} {amount}", amount=amount,
                currency="EUR", close_date=close, owner=owner,
                lines=[{"item": "Ads", "domain": "advertising", "quantity": "1",
                        "unit_price": "500"},
                       {"item": "Units", "domain": "products", "quantity": "4",
                        "unit_price": "500"}] if outcome == "won" else ())
            if stage == "proposal":
                opportunities.move(tx, opp.id, "needs_analysis")
                opportunities.move(tx, opp.id, "proposal")
            if outcome:
                opportunities.close(tx, opp.id, won=outcome == "won",
                                    reason="price" if outcome == "lost" else "fit")
            ids.append(opp.id)
    with crm.transaction() as tx:  # closed on known days, created 10 and 20 days earlier
        for opp_id, closed, days in ((ids[2], "2026-10-02", 10), (ids[3], "2026-10-06", 20)):
            at = dt.datetime.fromisoformat(closed + "T12:00:00+00:00")
            tx.session.execute(update(Opportunity).where(Opportunity.id == opp_id).values(
                closed_at=at, created_at=at - dt.timedelta(days=days)))
    return ids


def rows(crm, report, **kwargs):
    with crm.transaction() as tx:
        return getattr(reports, report)(tx, **kwargs).rows


def test_pipeline_by_stage_and_owner(crm, deals):
    assert rows(crm, "pipeline") == [
        {"stage": "qualification", "owner": "bob", "count": 1, "currency": "EUR",
         "amount": "4000.00", "weighted": "400.00", "probability": 10, "category": "pipeline"},
        {"stage": "proposal", "owner": "alice", "count": 1, "currency": "EUR",
         "amount": "10000.00", "weighted": "5000.00", "probability": 50,
         "category": "best_case"},
    ]


def test_forecast_by_month_and_quarter(crm, deals):
    assert rows(crm, "forecast") == [
        {"period": "2026-10", "category": "closed", "currency": "EUR", "count": 1,
         "amount": "2500.00", "weighted": "2500.00"},
        {"period": "2026-11", "category": "best_case", "currency": "EUR", "count": 1,
         "amount": "10000.00", "weighted": "5000.00"},
        {"period": "2026-12", "category": "pipeline", "currency": "EUR", "count": 1,
         "amount": "4000.00", "weighted": "400.00"},
    ]
    quarter = rows(crm, "forecast", period="quarter", start="2026-11-01")
    assert [(r["period"], r["category"], r["weighted"]) for r in quarter] == [
        ("2026-Q4", "pipeline", "400.00"), ("2026-Q4", "best_case", "5000.00")]


def test_forecast_follows_configured_probabilities(crm_factory, acme, deals):
    crm = crm_factory(config={"plugin": {"sales": {"stages": {
        "proposal": {"probability": 80, "category": "commit"}}}}})
    nov = rows(crm, "forecast", start="2026-11-01", end="2026-11-30")
    assert nov == [{"period": "2026-11", "category": "commit", "currency": "EUR",
                    "count": 1, "amount": "10000.00", "weighted": "8000.00"}]


def test_win_rate_and_cycle(crm, deals):
    assert rows(crm, "win_rate") == [
        {"owner": "alice", "won": 1, "lost": 0, "win_rate": "100.0%", "avg_cycle_days": 10.0},
        {"owner": "bob", "won": 0, "lost": 1, "win_rate": "0.0%", "avg_cycle_days": 20.0},
        {"owner": "(all)", "won": 1, "lost": 1, "win_rate": "50.0%", "avg_cycle_days": 15.0},
    ]


def test_sales_by_domain(crm, deals):
    assert rows(crm, "by_domain", period="quarter") == [
        {"period": "2026-Q4", "domain": "advertising", "currency": "EUR", "deals": 1,
         "amount": "500.00"},
        {"period": "2026-Q4", "domain": "products", "currency": "EUR", "deals": 1,
         "amount": "2000.00"},
    ]


def test_bad_report_input(crm):
    with pytest.raises(ValidationError, match="period: 'week' is not one of"), \
            crm.transaction() as tx:
        reports.forecast(tx, period="week")
    with pytest.raises(ValidationError, match="from: '2026-13-01' is not a date"), \
            crm.transaction() as tx:
        reports.win_rate(tx, start="2026-13-01")
