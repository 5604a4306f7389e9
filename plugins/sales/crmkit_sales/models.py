"""The plugin's tables, on the kernel's declarative base and prefixed ``sales_``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from crmkit.db import Base, BigId, Money, UTCDateTime, utcnow
from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ["Lead", "Opportunity", "OpportunityLine", "Task"]


class Lead(Base):
    """A prospect not yet known as a customer: captured, scored, qualified, converted."""

    __tablename__ = "sales_lead"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(50))
    title: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    source: Mapped[str] = mapped_column(String(60))
    campaign: Mapped[str | None] = mapped_column(String(100))
    owner: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    #: new, qualified, disqualified or converted.
    status: Mapped[str] = mapped_column(String(20), default="new")
    status_reason: Mapped[str | None] = mapped_column(String(500))
    customer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="SET NULL"))
    opportunity_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    converted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_sales_lead_email", "email"),
        Index("ix_sales_lead_status", "status"),
    )

    @property
    def display_name(self) -> str:
        return self.company or self.contact_name or self.email or f"lead {self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "contact_name": self.contact_name, "company": self.company,
            "email": self.email, "phone": self.phone, "title": self.title,
            "country": self.country, "source": self.source, "campaign": self.campaign,
            "owner": self.owner, "notes": self.notes, "status": self.status,
            "status_reason": self.status_reason, "customer_id": self.customer_id,
            "contact_id": self.contact_id, "opportunity_id": self.opportunity_id,
            "created_at": self.created_at.isoformat(),
            "converted_at": self.converted_at.isoformat() if self.converted_at else None,
        }


class Opportunity(Base):
    """A deal with a customer, moving through the ``sales_pipeline`` workflow."""

    __tablename__ = "sales_opportunity"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE"))
    lead_id: Mapped[int | None] = mapped_column(BigId)
    title: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    close_date: Mapped[dt.date] = mapped_column(Date)
    owner: Mapped[str | None] = mapped_column(String(100))
    #: The workflow state, kept in step by the ``workflow_transitioned`` hook.
    stage: Mapped[str] = mapped_column(String(60))
    #: Overrides the stage's default probability when set.
    probability: Mapped[int | None] = mapped_column(Integer)
    #: open, won or lost.
    status: Mapped[str] = mapped_column(String(10), default="open")
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_sales_opportunity_customer_id", "customer_id"),
        Index("ix_sales_opportunity_stage", "stage"),
        Index("ix_sales_opportunity_close_date", "close_date"),
    )


class OpportunityLine(Base):
    """A product or service on an opportunity, with quantity and unit price."""

    __tablename__ = "sales_opportunity_line"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    opportunity_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sales_opportunity.id", ondelete="CASCADE"))
    item: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(60))
    quantity: Mapped[Decimal] = mapped_column(Money)
    unit_price: Mapped[Decimal] = mapped_column(Money)

    __table_args__ = (Index("ix_sales_opportunity_line_opportunity_id", "opportunity_id"),)


class Task(Base):
    """A follow-up: a task or a scheduled call, meeting or e-mail, on one record."""

    __tablename__ = "sales_task"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: task, call, meeting or email.
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    owner: Mapped[str | None] = mapped_column(String(100))
    lead_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("sales_lead.id", ondelete="CASCADE"))
    opportunity_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("sales_opportunity.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE"))
    #: open or done.
    status: Mapped[str] = mapped_column(String(10), default="open")
    outcome: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    interaction_id: Mapped[int | None] = mapped_column(BigId)
    overdue_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_sales_task_status_due_at", "status", "due_at"),
        Index("ix_sales_task_customer_id", "customer_id"),
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "title": self.title,
            "due_at": self.due_at.isoformat(), "owner": self.owner, "lead_id": self.lead_id,
            "opportunity_id": self.opportunity_id, "customer_id": self.customer_id,
            "status": self.status, "outcome": self.outcome,
            "done_at": self.done_at.isoformat() if self.done_at else None,
            "interaction_id": self.interaction_id,
        }
