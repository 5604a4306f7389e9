"""Launching a campaign: members materialised and sends queued with set-based SQL.

One launch is one transaction of a few statements, whatever the number of customers:

1. ``INSERT INTO campaigns_member ... SELECT`` the customers of the campaign's segments,
   minus opted-out customers (per channel), suppression lists, archived (erased) customers
   and customers who already are members (which makes a re-launch add only newcomers);
   each gets a variant (``control`` or an A/B variant) from a hash of its id.
2. ``INSERT INTO outbox_event ... SELECT`` one ``campaigns.send`` event per new treated
   member: channel plugins (or a ``webhook`` rule) deliver them.
3. ``INSERT INTO interaction ... SELECT`` one outbound ``marketing`` interaction per send,
   so the send is on the customer's timeline.
4. ``UPDATE campaigns_member`` the new treated members to ``sent``.

Members are never sent twice: only members added by this launch, in status ``targeted``,
are sent, and the unique key (campaign, customer) keeps a customer from being added twice.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmkit import Rejected
from crmkit.db import UTCDateTime, utcnow
from crmkit.models import Customer, Interaction, OutboxEvent
from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from crmkit_campaigns import campaigns, segments
from crmkit_campaigns.models import Campaign, Consent, Member, Suppression
from crmkit_campaigns.settings import Settings

if TYPE_CHECKING:
    from crmkit import Transaction

__all__ = ["LaunchResult", "audience", "launch", "materialise", "opted_out", "run"]

#: The event each treated member gets, through the outbox.
SEND_EVENT = "campaigns.send"


def opted_out(channel: str, customer_id: Any = Customer.id) -> ColumnElement[bool]:
    """"The customer opted out of ``channel``": a channel's own consent row wins over ``*``."""
    def row(chan: str, opted_in: bool) -> ColumnElement[bool]:
        return exists().where(Consent.customer_id == customer_id, Consent.channel == chan,
                              Consent.opted_in.is_(opted_in))

    return or_(row(channel, False), and_(row("*", False), not_(row(channel, True))))


def suppressed(lists: tuple[str, ...] | None, customer_id: Any = Customer.id
               ) -> ColumnElement[bool]:
    """"The customer is on a suppression list that applies"."""
    query = exists().where(Suppression.customer_id == customer_id)
    if lists is not None:
        query = query.where(Suppression.list_name.in_(lists))
    return query


def audience(tx: Transaction, campaign: Campaign, now: dt.datetime) -> ColumnElement[bool]:
    """Who a launch adds: in a segment, reachable on the channel, not yet a member."""
    parts = [segments.condition(tx.crm, s, now) for s in campaigns.segments_of(tx.session,
                                                                                campaign)]
    settings = Settings.of(tx.crm)
    return and_(
        or_(*parts) if parts else literal(False),
        Customer.status != "archived",
        not_(opted_out(campaign.channel)),
        not_(suppressed(settings.suppression_lists)),
        not_(exists().where(Member.campaign_id == campaign.id,
                            Member.customer_id == Customer.id)),
    )


def _bucket(campaign: Campaign) -> ColumnElement[Any]:
    # A stable pseudo-random bucket 0..99 per (campaign, customer), portable integer SQL.
    return ((Customer.id % 1000003) * 7919 + (campaign.id % 1009) * 104729 + 17) % 100


def materialise(tx: Transaction, campaign: Campaign, launch_no: int, now: dt.datetime) -> int:
    """``INSERT ... SELECT`` this launch's members; how many were added."""
    bucket = _bucket(campaign)
    variants = list(campaign.variants) or ["A"]
    pick = case(*((bucket % len(variants) == i, literal(v, String)) for i, v
                  in enumerate(variants)), else_=literal(variants[0], String))
    is_control = bucket < campaign.control_percent
    source = select(
        literal(campaign.id, Member.campaign_id.type), Customer.id,
        case((is_control, literal("control", String)), else_=pick),
        literal(launch_no, Integer),
        case((is_control, literal("control", String)), else_=literal("targeted", String)),
        literal(now, UTCDateTime),
    ).where(audience(tx, campaign, now))
    tx.session.connection().execute(insert(Member).from_select(
        ["campaign_id", "customer_id", "variant", "launch", "status", "targeted_at"], source))
    return _count(tx.session, campaign, launch_no)


def _count(session: Session, campaign: Campaign, launch_no: int, status: str | None = None
           ) -> int:
    # Counted, not taken from rowcount: psycopg reports -1 for some INSERT ... SELECT.
    query = select(func.count()).select_from(Member).where(
        Member.campaign_id == campaign.id, Member.launch == launch_no)
    if status is not None:
        query = query.where(Member.status == status)
    return int(session.scalar(query) or 0)


def _json_object(session: Session, *pairs: tuple[str, Any]) -> Any:
    """A JSON object built by the database (keys are our constants, inlined)."""
    name = session.get_bind().dialect.name
    function = {"postgresql": func.jsonb_build_object}.get(name, func.json_object)
    args: list[Any] = []
    for key, value in pairs:
        args += [literal_column(f"'{key}'"), value]
    return function(*args)


def _json_empty_list(session: Session) -> Any:
    name = session.get_bind().dialect.name
    return func.jsonb_build_array() if name == "postgresql" else func.json_array()


def send(tx: Transaction, campaign: Campaign, launch_no: int, now: dt.datetime) -> int:
    """Queue one outbox event and log one interaction per new treated member."""
    session = tx.session
    new = and_(Member.campaign_id == campaign.id, Member.launch == launch_no,
               Member.status == "targeted")
    common = (("campaign_id", Member.campaign_id), ("code", Campaign.code),
              ("member_id", Member.id), ("customer_id", Member.customer_id),
              ("variant", Member.variant))
    members = select(Member).join(Campaign, Campaign.id == Member.campaign_id).where(new)
    events = members.with_only_columns(
        literal(SEND_EVENT, String),
        _json_object(session, *common, ("channel", Campaign.channel),
                     ("launch", Member.launch)),
        literal(tx.actor, String), literal(now, UTCDateTime), literal("pending", String),
        literal(0, Integer), literal(now, UTCDateTime), _json_empty_list(session),
    )
    sent = _count(session, campaign, launch_no, "targeted")
    session.connection().execute(insert(OutboxEvent).from_select(
        ["name", "payload", "actor", "created_at", "status", "attempts", "next_attempt_at",
         "delivered_to"], events))
    summary = f"Campaign {campaign.code}: {campaign.name}"[:1000]
    interactions = members.with_only_columns(
        Member.customer_id, literal(campaign.channel, String), literal("outbound", String),
        literal("marketing", String), literal(now, UTCDateTime), literal(summary, String),
        _json_object(session, ("campaign", Campaign.code), ("campaign_id", Member.campaign_id),
                     ("member_id", Member.id), ("variant", Member.variant)),
        literal(tx.actor, String), literal(now, UTCDateTime),
    )
    session.connection().execute(insert(Interaction).from_select(
        ["customer_id", "channel", "direction", "kind", "occurred_at", "summary", "payload",
         "actor", "created_at"], interactions))
    session.execute(update(Member).where(new).values(status="sent", sent_at=now)
                    .execution_options(synchronize_session=False))
    return sent


class LaunchResult(dict[str, Any]):
    """What a launch did: ``launch``, ``added``, ``control``, ``sent``."""


def run(tx: Transaction, campaign: Campaign) -> LaunchResult:
    """Materialise and send one launch of a running campaign (no state check here)."""
    # Two launches of one campaign at once: the second waits here for the first to commit,
    # then sees its members and adds none (SQLite serialises writers anyway).
    tx.session.execute(select(Campaign).where(Campaign.id == campaign.id).with_for_update()
                       .execution_options(populate_existing=True))
    now = utcnow()
    if campaign.ends_at is not None and campaign.ends_at <= now:
        raise Rejected(f"campaign {campaign.code!r} ended at {campaign.ends_at.isoformat()}; "
                       "it cannot be launched")
    launch_no = campaign.launches + 1
    added = materialise(tx, campaign, launch_no, now)
    sent = send(tx, campaign, launch_no, now)
    campaign.launches = launch_no
    campaign.launched_at = campaign.launched_at or now
    tx.session.flush()
    result = LaunchResult(campaign=campaign.code, launch=launch_no, added=added,
                          control=added - sent, sent=sent)
    tx.audit(campaigns.SUBJECT, campaign.id, "launch", dict(result))
    tx.emit("campaigns.launched", {"campaign_id": campaign.id, **result})
    return result


def launch(tx: Transaction, campaign: Campaign) -> LaunchResult:
    """Launch (or re-launch) a campaign: draft or scheduled ones start running.

    A completed or cancelled campaign is refused with :class:`Rejected`; nothing changes.
    """
    if campaign.state in ("completed", "cancelled"):
        raise Rejected(f"campaign {campaign.code!r} is {campaign.state}; it cannot be "
                       "launched again")
    if campaign.state == "running":
        return run(tx, campaign)
    results: list[LaunchResult] = []
    tx.session.info.setdefault("campaigns.launches", results)
    campaigns.move(tx, campaign, "launch")  # workflow_transitioned runs the launch
    done: list[LaunchResult] = tx.session.info.pop("campaigns.launches")
    return done[-1]
