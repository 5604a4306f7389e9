"""Campaigns: their definition (offer, budget, segments) and their lifecycle workflow.

The lifecycle is a kernel workflow, ``campaign`` (draft, scheduled, running, completed,
cancelled), so integrators can extend it in ``crmkit.toml`` and ``crmkit workflows`` shows
its history. ``Campaign.state`` mirrors the instance's state for cheap listings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crmkit import Conflict, Issue, NotFound, Rejected, ValidationError
from crmkit.db import utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit_campaigns import validation
from crmkit_campaigns.models import Campaign, CampaignSegment, Segment
from crmkit_campaigns.settings import Settings

if TYPE_CHECKING:
    from crmkit import Transaction

__all__ = ["WORKFLOW", "add", "get", "list_all", "move", "segments_of", "set_cost", "to_dict"]

SUBJECT = "campaigns_campaign"
WORKFLOW: dict[str, Any] = {
    "description": "A marketing campaign from draft to its end",
    "subject": SUBJECT,
    "initial": "draft",
    "states": ["draft", "scheduled", "running", "completed", "cancelled"],
    "final": ["completed", "cancelled"],
    "transitions": [
        {"name": "schedule", "from": "draft", "to": "scheduled"},
        {"name": "launch", "from": ["draft", "scheduled"], "to": "running"},
        {"name": "complete", "from": "running", "to": "completed"},
        {"name": "cancel", "from": ["draft", "scheduled", "running"], "to": "cancelled"},
    ],
}
OFFER_KINDS = ("price", "discount", "terms")


def to_dict(campaign: Campaign, segment_names: Sequence[str] = ()) -> dict[str, Any]:
    """A campaign as JSON-ready data (money as text)."""
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": campaign.id, "code": campaign.code, "name": campaign.name,
        "channel": campaign.channel, "state": campaign.state, "currency": campaign.currency,
        "budget": validation.money_text(campaign.budget),
        "cost": validation.money_text(campaign.cost), "starts_at": iso(campaign.starts_at),
        "ends_at": iso(campaign.ends_at), "offer": campaign.offer,
        "control_percent": campaign.control_percent, "variants": list(campaign.variants),
        "segments": list(segment_names), "launches": campaign.launches,
        "launched_at": iso(campaign.launched_at), "closed_at": iso(campaign.closed_at),
        "workflow_instance_id": campaign.workflow_instance_id,
    }


def _offer(issues: list[Issue], offer: Any) -> dict[str, Any] | None:
    if offer is None:
        return None
    if not isinstance(offer, Mapping):
        issues.append(Issue("offer", "must be an object", offer))
        return None
    unknown = set(offer) - {"kind", "value", "terms", "code", "starts_at", "ends_at"}
    for key in sorted(unknown):
        issues.append(Issue(f"offer.{key}", "unknown field; known: kind, value, terms, code, "
                            "starts_at, ends_at"))
    kind = offer.get("kind", "terms")
    if kind not in OFFER_KINDS:
        issues.append(Issue("offer.kind", f"must be one of {', '.join(OFFER_KINDS)}", kind))
    value = None
    if kind in ("price", "discount"):
        value = validation.money(issues, "offer.value", offer.get("value"), required=True)
        if kind == "discount" and value is not None and value > 100:
            issues.append(Issue("offer.value", "a discount is a percentage of at most 100",
                                str(value)))
    code = validation.code(issues, "offer.code", offer["code"]) if "code" in offer else None
    starts = validation.time(issues, "offer.starts_at", offer.get("starts_at"))
    ends = validation.time(issues, "offer.ends_at", offer.get("ends_at"))
    if starts and ends and ends <= starts:
        issues.append(Issue("offer.ends_at", f"the offer ends ({ends.isoformat()}) before it "
                            f"starts ({starts.isoformat()})", offer.get("ends_at")))
    terms = offer.get("terms")
    if terms is not None and (not isinstance(terms, str) or len(terms) > 2000):
        issues.append(Issue("offer.terms", "must be a text of at most 2000 characters", terms))
    result: dict[str, Any] = {"kind": kind}
    if value is not None:
        result["value"] = str(value)
    for key, item in (("terms", terms), ("code", code)):
        if item is not None:
            result[key] = item
    if starts is not None:
        result["starts_at"] = starts.isoformat()
    if ends is not None:
        result["ends_at"] = ends.isoformat()
    return result


def add(tx: Transaction, *, code: str, name: str, channel: str, segments: Sequence[str],
        currency: str | None = None, budget: Any = None, cost: Any = None,
        starts_at: Any = None, ends_at: Any = None, offer: Mapping[str, Any] | None = None,
        control_percent: int = 0, variants: Sequence[str] = ("A",)) -> Campaign:
    """Create a campaign in ``draft`` and start its lifecycle workflow.

    Every problem is reported at once (:class:`ValidationError`); nothing is written then.
    """
    issues: list[Issue] = []
    code = validation.code(issues, "code", code) or ""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        issues.append(Issue("name", "must be a non-empty text of at most 200 characters", name))
    if channel not in tx.crm.schemas.channels:
        issues.append(Issue("channel", f"unknown channel {channel!r}; known: "
                            f"{', '.join(sorted(tx.crm.schemas.channels))}", channel))
    currency = validation.currency(issues, "currency",
                                   currency or Settings.of(tx.crm).currency) or ""
    budget_value = validation.money(issues, "budget", budget)
    cost_value = validation.money(issues, "cost", cost) or Decimal(0)
    starts = validation.time(issues, "starts_at", starts_at)
    ends = validation.time(issues, "ends_at", ends_at)
    if starts and ends and ends <= starts:
        issues.append(Issue("ends_at", "the campaign ends before it starts", ends_at))
    offer_value = _offer(issues, offer)
    if isinstance(control_percent, bool) or not isinstance(control_percent, int) \
            or not 0 <= control_percent <= 90:
        issues.append(Issue("control_percent", "must be a whole percentage from 0 to 90",
                            control_percent))
    variant_names = list(variants) or ["A"]
    for i, variant in enumerate(variant_names):
        if not isinstance(variant, str) or not validation.CODE.match(variant) \
                or len(variant) > 20 or variant == "control":
            issues.append(Issue(f"variants[{i}]", "must be a name of 1-20 letters or digits "
                                "other than 'control'", variant))
    if len(set(variant_names)) != len(variant_names):
        issues.append(Issue("variants", "must not repeat a name", variant_names))
    if not segments:
        issues.append(Issue("segments", "name at least one segment"))
    found: list[Segment] = []
    for i, key in enumerate(segments):
        segment = tx.session.scalars(select(Segment).where(Segment.name == key)).first()
        if segment is None:
            issues.append(Issue(f"segments[{i}]", f"no segment {key!r}", key))
        else:
            found.append(segment)
    if issues:
        raise ValidationError(issues, context=f"campaign {code or name!r}")
    if tx.session.scalar(select(Campaign.id).where(Campaign.code == code)) is not None:
        raise Conflict(f"a campaign with code {code!r} already exists")
    campaign = Campaign(
        code=code, name=name.strip(), channel=channel, currency=currency,
        budget=budget_value, cost=cost_value, starts_at=starts, ends_at=ends,
        offer=offer_value, control_percent=control_percent, variants=variant_names,
        state="draft", launches=0, created_at=utcnow(),
    )
    tx.session.add(campaign)
    tx.session.flush()
    for segment in {s.id: s for s in found}.values():
        tx.session.add(CampaignSegment(campaign_id=campaign.id, segment_id=segment.id))
    instance = tx.workflows.start("campaign", subject_type=SUBJECT, subject_id=campaign.id,
                                  data={"code": code})
    campaign.workflow_instance_id = instance.id
    campaign.state = instance.state
    tx.session.flush()
    data = to_dict(campaign, [s.name for s in found])
    tx.audit(SUBJECT, campaign.id, "create", {"after": data})
    tx.emit("campaigns.campaign_created", {"campaign_id": campaign.id, "code": code})
    return campaign


def get(session: Session, key: str | int) -> Campaign:
    """The campaign with this code, else with this id; :class:`NotFound` otherwise."""
    campaign = session.scalars(select(Campaign).where(Campaign.code == str(key))).first()
    if campaign is None and (isinstance(key, int) or key.isdigit()):
        campaign = session.get(Campaign, int(key))
    if campaign is None:
        raise NotFound(f"no campaign {key!r}")
    return campaign


def list_all(session: Session, state: str | None = None) -> list[Campaign]:
    """Campaigns, newest first, optionally in one state."""
    query = select(Campaign).order_by(Campaign.id.desc())
    if state:
        query = query.where(Campaign.state == state)
    return list(session.scalars(query))


def segments_of(session: Session, campaign: Campaign) -> list[Segment]:
    """The segments a campaign targets."""
    return list(session.scalars(
        select(Segment).join(CampaignSegment, CampaignSegment.segment_id == Segment.id)
        .where(CampaignSegment.campaign_id == campaign.id).order_by(Segment.name)))


def move(tx: Transaction, campaign: Campaign, transition: str,
         data: Mapping[str, Any] | None = None) -> None:
    """Fire a lifecycle transition; a refused one raises :class:`Rejected`."""
    if campaign.workflow_instance_id is None:
        raise Rejected(f"campaign {campaign.code!r} has no lifecycle workflow")
    instance = tx.workflows.get(campaign.workflow_instance_id)
    if instance.state in ("completed", "cancelled"):
        raise Rejected(f"campaign {campaign.code!r} is {instance.state}; it cannot "
                       f"{transition}")
    tx.workflows.fire(instance, transition, data=dict(data or {}))


def set_cost(tx: Transaction, campaign: Campaign, cost: Any) -> None:
    """Record the campaign's actual cost so far."""
    issues: list[Issue] = []
    value = validation.money(issues, "cost", cost, required=True)
    if issues or value is None:
        raise ValidationError(issues, context=f"campaign {campaign.code!r}")
    before = campaign.cost
    campaign.cost = value
    tx.session.flush()
    tx.audit(SUBJECT, campaign.id, "update",
             {"before": {"cost": str(before)}, "after": {"cost": str(value)}})


def find_instance_campaign(session: Session, subject_id: str) -> Campaign | None:
    """The campaign a lifecycle instance belongs to."""
    try:
        return session.get(Campaign, int(subject_id))
    except ValueError:
        raise NotFound(f"no campaign {subject_id!r}") from None
