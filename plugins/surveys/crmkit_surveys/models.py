"""The plugin's tables: on crmkit's declarative base, prefixed ``surveys_``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmkit.db import MYSQL_TABLE_OPTIONS, Base, BigId, Json, UTCDateTime, utcnow
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ["Invitation", "Response", "Survey"]


class Survey(Base):
    """One version of a survey. A published version never changes; a change is a new one."""

    __tablename__ = "surveys_survey"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(60))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    #: draft, published or closed (a published version replaced by a newer one).
    status: Mapped[str] = mapped_column(String(20), default="draft")
    audience: Mapped[str] = mapped_column(String(20), default="customers")
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (UniqueConstraint("key", "version"), MYSQL_TABLE_OPTIONS)


class Invitation(Base):
    """One recipient of one survey version, reached through an unguessable token.

    Only the token's SHA-256 is stored: whoever reads the database cannot answer in
    someone else's name. A customer recipient has ``customer_id``; an employee has
    ``email``, ``name``, ``department`` and ``role`` instead.
    """

    __tablename__ = "surveys_invitation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survey_id: Mapped[int] = mapped_column(BigId, ForeignKey("surveys_survey.id"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE"), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    department: Mapped[str | None] = mapped_column(String(100), nullable=True)
    role: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: How the recipient was chosen: a segment's name, "criteria", "customers", a rule.
    segment: Mapped[str | None] = mapped_column(String(100), nullable=True)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    last_reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: partial or complete once answered; None before.
    answered: Mapped[str | None] = mapped_column(String(10), nullable=True)

    __table_args__ = (
        Index("ix_surveys_invitation_survey_id", "survey_id"),
        Index("ix_surveys_invitation_customer_id_sent_at", "customer_id", "sent_at"),
        MYSQL_TABLE_OPTIONS,
    )


class Response(Base):
    """Answers to one survey version. Anonymous responses have no invitation or customer,
    and their time is kept to the day only."""

    __tablename__ = "surveys_response"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    survey_id: Mapped[int] = mapped_column(BigId, ForeignKey("surveys_survey.id"))
    invitation_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("surveys_invitation.id", ondelete="SET NULL"), nullable=True,
        unique=True)
    customer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="SET NULL"), nullable=True)
    department: Mapped[str | None] = mapped_column(String(100), nullable=True)
    role: Mapped[str | None] = mapped_column(String(100), nullable=True)
    segment: Mapped[str | None] = mapped_column(String(100), nullable=True)
    #: partial or complete
    status: Mapped[str] = mapped_column(String(10))
    answers: Mapped[dict[str, Any]] = mapped_column(Json)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: "token" or "import".
    source: Mapped[str] = mapped_column(String(20), default="token")
    #: An imported record's id in the other tool: re-importing never duplicates.
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)

    __table_args__ = (
        UniqueConstraint("survey_id", "external_id"),
        Index("ix_surveys_response_customer_id", "customer_id"),
        MYSQL_TABLE_OPTIONS,
    )
