"""The plugin's tables, on the kernel's declarative base and prefixed ``campaigns_``.

Money is :class:`crmkit.db.Money` (a ``Decimal``), times :class:`crmkit.db.UTCDateTime`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from crmkit.db import MYSQL_TABLE_OPTIONS, Base, BigId, Json, Money, UTCDateTime, utcnow
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

__all__ = [
    "Campaign",
    "CampaignSegment",
    "Consent",
    "Member",
    "Segment",
    "SegmentMember",
    "Suppression",
]

#: Member statuses, in the order a member usually moves through them.
STATUSES = ("targeted", "control", "sent", "opened", "responded", "converted", "opted_out",
            "bounced")


class Segment(Base):
    """Named criteria over customers; frozen, it is a static list of customers."""

    __tablename__ = "campaigns_segment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    criteria: Mapped[dict[str, Any]] = mapped_column(Json)
    frozen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)


class SegmentMember(Base):
    """A customer of a frozen segment."""

    __tablename__ = "campaigns_segment_member"

    segment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaigns_segment.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)


class Campaign(Base):
    """A campaign: who it targets (segments), through which channel, what it offers."""

    __tablename__ = "campaigns_campaign"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The campaign's code: responses carry it (``payload.campaign``).
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    budget: Mapped[Decimal | None] = mapped_column(Money)
    cost: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    starts_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: ``{"kind": price|discount|terms, "value", "terms", "code", "starts_at", "ends_at"}``.
    offer: Mapped[dict[str, Any] | None] = mapped_column(Json)
    #: Share of the targeted customers held out as a control group (0: none).
    control_percent: Mapped[int] = mapped_column(Integer, default=0)
    #: Variant names for an A/B split of the treated members (``["A"]`` by default).
    variants: Mapped[list[str]] = mapped_column(Json)
    #: Mirrors the lifecycle workflow's state, for cheap listing.
    state: Mapped[str] = mapped_column(String(20), default="draft")
    workflow_instance_id: Mapped[int | None] = mapped_column(BigId)
    launches: Mapped[int] = mapped_column(Integer, default=0)
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)


class CampaignSegment(Base):
    """Which segments a campaign targets."""

    __tablename__ = "campaigns_campaign_segment"

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaigns_campaign.id", ondelete="CASCADE"), primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaigns_segment.id"), primary_key=True)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)


class Member(Base):
    """A customer targeted by a campaign, with its variant and response history."""

    __tablename__ = "campaigns_member"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("campaigns_campaign.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE"))
    #: ``control`` or one of the campaign's variants.
    variant: Mapped[str] = mapped_column(String(20))
    #: The launch (1, 2, ...) that added the member.
    launch: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    targeted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    responded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    converted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    opted_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    bounced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Revenue attributed by conversions, in the campaign's currency.
    revenue: Mapped[Decimal | None] = mapped_column(Money)
    #: What converted the member: ``interaction:<id>``, ``opportunity:<id>``, ``manual``.
    conversion_ref: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        UniqueConstraint("campaign_id", "customer_id"),
        Index("ix_campaigns_member_customer_id", "customer_id"),
        MYSQL_TABLE_OPTIONS,
    )


class Consent(Base):
    """A customer's opt-in or opt-out for a channel (``*``: every channel)."""

    __tablename__ = "campaigns_consent"

    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    opted_in: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)


class Suppression(Base):
    """A customer on a named suppression list (``default`` unless told otherwise)."""

    __tablename__ = "campaigns_suppression"

    list_name: Mapped[str] = mapped_column(String(60), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_campaigns_suppression_customer_id", "customer_id"),
                      MYSQL_TABLE_OPTIONS)
