"""Opportunities: create, read, move along the pipeline, win and lose.

Functions take the running :class:`crmkit.Transaction`; every check runs before the first
row is written, so a refused call changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmkit import Issue, NotFound, ValidationError
from crmkit.db import utcnow
from sqlalchemy import select

from crmkit_sales import values
from crmkit_sales.models import Opportunity, OpportunityLine
from crmkit_sales.pipeline import PIPELINE, SUBJECT, check_close, target_transition
from crmkit_sales.settings import Settings

if TYPE_CHECKING:
    from crmkit.models import WorkflowStep
    from crmkit.uow import Transaction

__all__ = ["close", "create", "get", "list_", "move", "to_dict"]


def _lines(raw: Sequence[Mapping[str, Any]], settings: Settings) -> list[OpportunityLine]:
    lines = []
    for index, line in enumerate(raw):
        where = f"lines[{index}]"
        if not isinstance(line, Mapping):
            raise ValidationError([Issue(where, "must be a table of item, domain, quantity, "
                                         "unit_price")])
        lines.append(OpportunityLine(
            item=values.text(f"{where}.item", line.get("item"), required=True),
            domain=values.check_choice(f"{where}.domain", line.get("domain"), settings.domains),
            quantity=values.money(f"{where}.quantity", line.get("quantity", "1"),
                                  allow_zero=False),
            unit_price=values.money(f"{where}.unit_price", line.get("unit_price")),
        ))
    return lines


def create(tx: Transaction, *, customer: int, title: str, close_date: Any,
           amount: Any = None, currency: str | None = None, owner: str | None = None,
           lines: Sequence[Mapping[str, Any]] = (), probability: int | None = None,
           lead_id: int | None = None) -> Opportunity:
    """Create an opportunity for ``customer`` and start its pipeline instance.

    With ``lines`` the amount is their total (an ``amount`` that disagrees is refused);
    without, ``amount`` is required.
    """
    settings = Settings.of(tx.crm)
    target = tx.customers.get(values.positive_id("customer", customer))
    clean_title = values.text("title", title, required=True)
    when = values.date("close_date", close_date)
    code = values.currency(currency if currency is not None else settings.default_currency)
    items = _lines(lines, settings)
    total = sum((line.quantity * line.unit_price for line in items), Decimal(0))
    if amount is None and not items:
        raise ValidationError([Issue("amount", "give an amount or lines")])
    if amount is not None:
        given = values.money("amount", amount)
        if items and given != total:
            raise ValidationError([Issue("amount", f"{given} differs from the lines' total "
                                         f"{total}", str(amount))])
        total = given
    if probability is not None and (isinstance(probability, bool)
                                    or not isinstance(probability, int)
                                    or not 0 <= probability <= 100):
        raise ValidationError([Issue("probability", "must be an integer from 0 to 100",
                                     probability)])
    definition = tx.workflows.definitions.get(PIPELINE)
    now = utcnow()
    opp = Opportunity(customer_id=target.id, lead_id=lead_id, title=clean_title,
                      amount=total,
                      currency=code, close_date=when,
                      owner=values.text("owner", owner, max_length=100),
                      stage=definition.initial, probability=probability, status="open",
                      created_at=now, updated_at=now)
    tx.session.add(opp)
    tx.session.flush()
    for line in items:
        line.opportunity_id = opp.id
        tx.session.add(line)
    tx.session.flush()
    tx.workflows.start(PIPELINE, customer=target, subject_type=SUBJECT, subject_id=opp.id)
    data = to_dict(tx, opp, settings)
    tx.audit("sales_opportunity", opp.id, "create", {"after": data})
    tx.emit("sales.opportunity_created", {"opportunity_id": opp.id, "customer_id": target.id,
                                          "amount": values.fmt(opp.amount), "currency": code})
    return opp


def get(tx: Transaction, opportunity_id: int) -> Opportunity:
    """The opportunity; :class:`NotFound` if there is none."""
    opp = tx.session.get(Opportunity, values.positive_id("opportunity", opportunity_id))
    if opp is None:
        raise NotFound(f"no opportunity with id {opportunity_id}")
    return opp


def list_(tx: Transaction, *, stage: str | None = None, owner: str | None = None,
          customer: int | None = None, status: str | None = None, limit: int = 100
          ) -> list[Opportunity]:
    """Opportunities matching every filter, oldest first."""
    query = select(Opportunity).order_by(Opportunity.id).limit(limit)
    if stage:
        query = query.where(Opportunity.stage == stage)
    if owner:
        query = query.where(Opportunity.owner == owner)
    if customer is not None:
        query = query.where(Opportunity.customer_id == customer)
    if status:
        query = query.where(Opportunity.status == status)
    return list(tx.session.scalars(query))


def _instance(tx: Transaction, opp: Opportunity) -> Any:
    instance = tx.workflows.find(PIPELINE, SUBJECT, opp.id)
    if instance is None:
        raise NotFound(f"opportunity {opp.id} has no pipeline instance")
    return instance


def move(tx: Transaction, opportunity_id: int, stage: str) -> WorkflowStep:
    """Move an open opportunity to ``stage`` if the pipeline allows it (not to won/lost)."""
    settings = Settings.of(tx.crm)
    opp = get(tx, opportunity_id)
    if stage in (settings.won_stage, settings.lost_stage):
        verb = "win" if stage == settings.won_stage else "lose"
        raise ValidationError([Issue("stage", f"use '{verb}' with a reason to close an "
                                     "opportunity", stage)])
    instance = _instance(tx, opp)
    definition = tx.workflows.definitions.get(PIPELINE)
    name = target_transition(definition, instance.state, stage)
    return tx.workflows.fire(instance, name)


def close(tx: Transaction, opportunity_id: int, *, won: bool, reason: str | None
          ) -> WorkflowStep:
    """Win or lose an opportunity; both need a reason, losing one of the configured ones."""
    settings = Settings.of(tx.crm)
    opp = get(tx, opportunity_id)
    stage = settings.won_stage if won else settings.lost_stage
    data = {"reason": reason.strip() if isinstance(reason, str) else reason}
    check_close(stage, data, settings)
    instance = _instance(tx, opp)
    definition = tx.workflows.definitions.get(PIPELINE)
    name = target_transition(definition, instance.state, stage)
    return tx.workflows.fire(instance, name, data=data)


def on_transition(tx: Transaction, subject_id: str, to_state: str, data: Mapping[str, Any]
                  ) -> None:
    """Keep the opportunity's row in step with its pipeline instance."""
    settings = Settings.of(tx.crm)
    opp = tx.session.get(Opportunity, int(subject_id))
    if opp is None:
        return
    before = opp.stage
    now = utcnow()
    opp.stage = to_state
    opp.updated_at = now
    if to_state in (settings.won_stage, settings.lost_stage):
        opp.status = "won" if to_state == settings.won_stage else "lost"
        opp.reason = data.get("reason")
        opp.closed_at = now
        opp.probability = None
        tx.interactions.log(
            opp.customer_id, channel="system", kind="sales_activity", direction="outbound",
            summary=f"Opportunity {opp.id} '{opp.title}' {opp.status}: {opp.reason}",
            payload={"opportunity_id": opp.id, "event": opp.status},
            amount=opp.amount if opp.status == "won" else None,
            currency=opp.currency if opp.status == "won" else None,
        )
        campaign = None
        if opp.lead_id is not None:
            from crmkit_sales.models import Lead

            lead = tx.session.get(Lead, opp.lead_id)
            campaign = lead.campaign if lead is not None else None
        tx.emit(f"sales.opportunity_{opp.status}", {
            "opportunity_id": opp.id, "customer_id": opp.customer_id,
            "amount": values.fmt(opp.amount), "currency": opp.currency,
            "reason": opp.reason, "owner": opp.owner,
            **({"campaign": campaign} if campaign else {})})
    tx.audit("sales_opportunity", opp.id, "move",
             {"before": {"stage": before}, "after": {"stage": to_state}})


def probability(opp: Opportunity, settings: Settings) -> int:
    """The opportunity's own probability, else its stage's default."""
    if opp.status == "open" and opp.probability is not None:
        return opp.probability
    return settings.stage(opp.stage).probability


def to_dict(tx: Transaction, opp: Opportunity, settings: Settings | None = None,
            *, lines: bool = True) -> dict[str, Any]:
    """The opportunity as JSON-ready data, with its forecast figures."""
    settings = settings or Settings.of(tx.crm)
    percent = probability(opp, settings)
    data: dict[str, Any] = {
        "id": opp.id, "customer_id": opp.customer_id, "title": opp.title,
        "amount": values.fmt(opp.amount), "currency": opp.currency,
        "close_date": opp.close_date.isoformat(), "owner": opp.owner, "stage": opp.stage,
        "status": opp.status, "probability": percent,
        "weighted": values.fmt(opp.amount * percent / 100),
        "category": settings.stage(opp.stage).category, "reason": opp.reason,
        "lead_id": opp.lead_id, "created_at": opp.created_at.isoformat(),
        "closed_at": opp.closed_at.isoformat() if opp.closed_at else None,
    }
    if lines:
        rows = tx.session.scalars(select(OpportunityLine).where(
            OpportunityLine.opportunity_id == opp.id).order_by(OpportunityLine.id))
        data["lines"] = [{"item": r.item, "domain": r.domain, "quantity": values.fmt(r.quantity, 0),
                          "unit_price": values.fmt(r.unit_price),
                          "total": values.fmt(r.quantity * r.unit_price)} for r in rows]
    return data


def cycle_days(opp: Opportunity) -> float | None:
    """Days from creation to close, for closed opportunities."""
    if opp.closed_at is None:
        return None
    return (opp.closed_at - opp.created_at) / dt.timedelta(days=1)
