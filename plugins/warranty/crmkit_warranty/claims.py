"""Claims: open one (entitlement checked and shown), move it through its workflow, read it.

Every claim step lands on the customer's timeline as a ``warranty_claim`` interaction, in
the transaction of the step.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmkit.db import utcnow
from crmkit.errors import Issue, NotFound, Rejected, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit_warranty import alerts
from crmkit_warranty.catalog import get_product
from crmkit_warranty.lifecycle import ESCALATIONS, REMEDIES, WORKFLOW
from crmkit_warranty.models import WarrantyClaim, WarrantyProduct, WarrantyUnit
from crmkit_warranty.settings import Settings
from crmkit_warranty.terms import add_business_days, entitlement
from crmkit_warranty.units import get_unit

if TYPE_CHECKING:
    from crmkit.models import WorkflowInstance, WorkflowStep
    from crmkit.uow import Transaction
    from crmkit.workflow import Transition

__all__ = ["after_transition", "before_transition", "claim_dict", "get_claim", "list_claims",
           "move_claim", "open_claim"]

TIMER_ACTOR = "timer"
INTERACTION_KIND = "warranty_claim"
INTERACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["claim_id", "step"],
    "properties": {
        "claim_id": {"type": "integer"},
        "step": {"type": "string"},
        "state": {"type": "string"},
    },
}


def get_claim(session: Session, claim_id: int) -> WarrantyClaim:
    claim = session.get(WarrantyClaim, claim_id)
    if claim is None:
        raise NotFound(f"no warranty claim with id {claim_id}")
    return claim


def _check_inputs(settings: Settings, defect_code: str, description: str) -> None:
    issues = []
    if defect_code not in settings.defect_codes:
        known = ", ".join(sorted(settings.defect_codes))
        issues.append(Issue("defect_code", f"{defect_code!r} is not in the defect catalogue "
                            f"(known: {known})", defect_code))
    if not isinstance(description, str) or not description.strip() or len(description) > 5000:
        issues.append(Issue("description", "must be 1 to 5000 characters", description))
    if issues:
        raise ValidationError(issues, context="claim")


def open_claim(tx: Transaction, *, sku: str, defect_code: str, description: str,
               channel: str, serial: str | None = None, customer_id: int | None = None,
               settings: Settings | None = None) -> WarrantyClaim:
    """Open a claim against unit ``serial`` of ``sku`` (or ``sku`` and ``customer_id`` when
    the serial is unknown); check entitlement, start the workflow, check alert thresholds."""
    settings = settings or Settings.of(tx.crm)
    _check_inputs(settings, defect_code, description)
    session = tx.session
    unit: WarrantyUnit | None = None
    if serial is not None:
        unit = get_unit(session, sku, serial)
        if customer_id is not None and customer_id != unit.customer_id:
            raise ValidationError([Issue("customer_id", f"unit {serial!r} belongs to customer "
                                         f"{unit.customer_id}, not {customer_id}",
                                         customer_id)], context="claim")
        customer_id = unit.customer_id
        product = session.get(WarrantyProduct, unit.product_id)
        assert product is not None
    else:
        if customer_id is None:
            raise ValidationError([Issue("customer_id", "give the serial, or the customer "
                                         "when the serial is unknown")], context="claim")
        product = get_product(session, sku)
    customer = tx.customers.get(customer_id)
    now = utcnow()
    claim = WarrantyClaim(
        unit_id=unit.id if unit else None, product_id=product.id, customer_id=customer.id,
        defect_code=defect_code, description=description.strip(), channel=channel,
        entitlement=entitlement(now.date(), unit.warranty_end if unit else None,
                                unit.extended_end if unit else None),
        state="reported", opened_at=now, opened_month=now.strftime("%Y-%m"),
        days_since_purchase=(now.date() - unit.purchase_date).days if unit else None,
        triage_due_at=add_business_days(now, settings.triage_business_days, settings.holidays),
        resolution_due_at=add_business_days(now, settings.resolution_business_days,
                                            settings.holidays),
    )
    session.add(claim)
    session.flush()
    instance = tx.workflows.start(WORKFLOW, customer=customer, subject_type=WORKFLOW,
                                  subject_id=claim.id, data={
                                      "claim_id": claim.id,
                                      "triage_due_at": claim.triage_due_at.isoformat(),
                                      "resolution_due_at": claim.resolution_due_at.isoformat(),
                                  })
    claim.workflow_instance_id = instance.id
    what = f"serial {serial}" if serial else "serial unknown"
    tx.interactions.log(
        customer, channel=channel, kind=INTERACTION_KIND, direction="inbound",
        summary=f"Warranty claim #{claim.id} opened: {product.name} ({what}), "
                f"{settings.defect_codes[defect_code]}; entitlement: {claim.entitlement}",
        payload={"claim_id": claim.id, "step": "open", "state": "reported",
                 "entitlement": claim.entitlement, "defect_code": defect_code},
    )
    tx.audit("warranty_claim", claim.id, "create", {"after": claim_dict(session, claim)})
    tx.emit("warranty.claim_opened", {
        "claim_id": claim.id, "customer_id": customer.id, "sku": product.sku,
        "serial": serial, "defect_code": defect_code, "entitlement": claim.entitlement,
        "channel": channel})
    alerts.check_thresholds(tx, claim, product, unit, settings)
    return claim


def move_claim(tx: Transaction, claim_id: int, transition: str, *, note: str | None = None,
               reason: str | None = None) -> WarrantyClaim:
    """Fire ``transition`` on the claim's workflow; the workflow refuses a move it does not
    allow (``Rejected`` naming the allowed ones), and nothing changes."""
    claim = get_claim(tx.session, claim_id)
    data: dict[str, Any] = {}
    if note:
        data["note"] = note
    if reason is not None:
        data["reason"] = reason
    if claim.workflow_instance_id is None:
        raise NotFound(f"warranty claim {claim_id} has no workflow instance")
    definition = tx.crm.workflows.get(WORKFLOW)
    move = definition.transition(transition)
    if move is not None and claim.state not in move.sources:
        allowed = ", ".join(t.name for t in definition.available(claim.state)
                            if t.timer is None) or "nothing (the claim is closed)"
        raise Rejected(f"warranty claim {claim_id} is {claim.state!r}; {transition!r} needs "
                       f"{' or '.join(map(repr, move.sources))} (allowed now: {allowed})")
    tx.workflows.fire(claim.workflow_instance_id, transition, data=data)
    return claim


def before_transition(tx: Transaction, instance: WorkflowInstance, transition: Transition,
                      data: dict[str, Any]) -> None:
    """Veto what the state machine cannot express: a reject without a reason, an SLA
    escalation fired by a person."""
    if instance.workflow != WORKFLOW:
        return
    if transition.name == "reject":
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise Rejected(f"rejecting warranty claim {instance.subject_id} needs a reason")
    if transition.name in ESCALATIONS:
        if tx.actor != TIMER_ACTOR:
            raise Rejected(f"{transition.name!r} is fired by the SLA timer, not by hand")
        # Clear the deadline: the self-transition must not re-arm the timer it came from.
        data[ESCALATIONS[transition.name][1]] = None


def after_transition(tx: Transaction, instance: WorkflowInstance, step: WorkflowStep) -> None:
    """Mirror the step on the claim row, put it on the customer's timeline, announce SLA
    breaches."""
    if instance.workflow != WORKFLOW:
        return
    claim = get_claim(tx.session, int(instance.subject_id))
    name, now = step.transition, step.at
    claim.state = step.to_state
    if name == "triage":
        claim.triaged_at = now
    elif name in REMEDIES:
        claim.remedy = name
    elif name == "resolve":
        claim.resolved_at = now
        claim.resolution_seconds = int((now - claim.opened_at).total_seconds())
    elif name == "reopen":
        claim.resolved_at, claim.resolution_seconds = None, None
    elif name == "close":
        claim.closed_at = now
    elif name == "reject":
        claim.reject_reason = str(step.data.get("reason"))
        claim.closed_at = now
    sla = ESCALATIONS.get(name)
    if sla is not None:
        due = claim.triage_due_at if sla[0] == "triage" else claim.resolution_due_at
        if sla[0] == "triage":
            claim.triage_breached = True
        else:
            claim.resolution_breached = True
        tx.emit("warranty.sla_breached", {
            "claim_id": claim.id, "customer_id": claim.customer_id, "sla": sla[0],
            "due_at": due, "state": claim.state})
        summary = (f"Warranty claim #{claim.id}: {sla[0]} SLA breached "
                   f"(due {due:%Y-%m-%d %H:%M} UTC)")
    else:
        detail = step.data.get("reason") or step.data.get("note")
        summary = (f"Warranty claim #{claim.id}: {name} ({step.from_state} → {step.to_state})"
                   + (f": {detail}" if detail else ""))
    tx.session.flush()
    tx.interactions.log(
        claim.customer_id, channel="system", kind=INTERACTION_KIND, direction="outbound",
        summary=summary, payload={"claim_id": claim.id, "step": name, "state": claim.state},
    )
    tx.emit("warranty.claim_moved", {"claim_id": claim.id, "customer_id": claim.customer_id,
                                     "transition": name, "from": step.from_state,
                                     "to": step.to_state})


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def claim_dict(session: Session, claim: WarrantyClaim) -> dict[str, Any]:
    """The claim as shown by ``claims show`` and ``--json``."""
    product = session.get(WarrantyProduct, claim.product_id)
    unit = session.get(WarrantyUnit, claim.unit_id) if claim.unit_id else None
    return {
        "id": claim.id, "state": claim.state, "customer_id": claim.customer_id,
        "sku": product.sku if product else None, "serial": unit.serial if unit else None,
        "batch": unit.batch if unit else None, "defect_code": claim.defect_code,
        "description": claim.description, "channel": claim.channel,
        "entitlement": claim.entitlement, "opened_at": _iso(claim.opened_at),
        "triage_due_at": _iso(claim.triage_due_at),
        "resolution_due_at": _iso(claim.resolution_due_at),
        "triage_breached": claim.triage_breached,
        "resolution_breached": claim.resolution_breached, "remedy": claim.remedy,
        "resolved_at": _iso(claim.resolved_at), "closed_at": _iso(claim.closed_at),
        "reject_reason": claim.reject_reason, "workflow_instance_id": claim.workflow_instance_id,
    }


def list_claims(session: Session, *, state: str | None = None, customer_id: int | None = None,
                sku: str | None = None, limit: int = 50) -> list[WarrantyClaim]:
    query = select(WarrantyClaim).order_by(WarrantyClaim.id.desc()).limit(limit)
    if state:
        query = query.where(WarrantyClaim.state == state)
    if customer_id is not None:
        query = query.where(WarrantyClaim.customer_id == customer_id)
    if sku:
        query = query.where(WarrantyClaim.product_id == get_product(session, sku).id)
    return list(session.scalars(query))
