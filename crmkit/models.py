"""The kernel's tables. Plugins add their own, prefixed with their name, on the same Base."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crmkit.db import MYSQL_TABLE_OPTIONS, Base, BigId, Json, Money, UTCDateTime, utcnow

__all__ = [
    "AuditEntry",
    "Contact",
    "Customer",
    "CustomerTag",
    "ExternalRef",
    "Interaction",
    "OutboxEvent",
    "PluginState",
    "RuleExecution",
    "WorkflowInstance",
    "WorkflowStep",
    "WorkflowTimer",
]

CUSTOMER_KINDS = ("person", "organization")
CUSTOMER_STATUSES = ("prospect", "active", "inactive", "archived")
DIRECTIONS = ("inbound", "outbound")
EVENT_STATUSES = ("pending", "delivered", "dead")
TIMER_STATUSES = ("pending", "fired", "failed", "cancelled")


class Customer(Base):
    """A person or an organization the business has a relationship with."""

    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(500), index=True)
    #: Relationship roles: customer, prospect, partner, supplier (SAP BP roles map onto them).
    roles: Mapped[list[str]] = mapped_column(Json, default=list)
    status: Mapped[str] = mapped_column(String(20), default="active")
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    owner: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    tag_rows: Mapped[list[CustomerTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CustomerTag.tag"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("kind IN ('person', 'organization')", name="kind"),
        MYSQL_TABLE_OPTIONS,
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    def to_dict(self) -> dict[str, Any]:
        """The customer as a JSON-ready dict (the shape of customer.schema.json plus ids)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "roles": list(self.roles or []),
            "status": self.status,
            "email": self.email,
            "phone": self.phone,
            "addresses": list(self.addresses or []),
            "owner": self.owner,
            "tags": self.tags,
            "attributes": dict(self.attributes or {}),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
        }


class CustomerTag(Base):
    """A tag on a customer; its own table so that finding by tag uses an index."""

    __tablename__ = "customer_tag"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)

    __table_args__ = (Index("ix_customer_tag_tag", "tag"), MYSQL_TABLE_OPTIONS)


class Contact(Base):
    """A person linked to an organization with a role (buyer, technical contact, ...)."""

    __tablename__ = "customer_contact"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(100), default="contact")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)


class Interaction(Base):
    """One entry on a customer's timeline: a call, an e-mail, a visit, a purchase..."""

    __tablename__ = "interaction"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(60))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    summary: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    actor: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # The timeline: newest first for one customer, stable under equal timestamps.
        Index("ix_interaction_timeline", "customer_id", "occurred_at", "id"),
        Index("ix_interaction_kind_occurred_at", "kind", "occurred_at"),
        CheckConstraint("direction IN ('inbound', 'outbound')", name="direction"),
        MYSQL_TABLE_OPTIONS,
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "direction": self.direction,
            "kind": self.kind,
            "occurred_at": self.occurred_at.isoformat(),
            "summary": self.summary,
            "payload": dict(self.payload or {}),
            "actor": self.actor,
            "amount": None if self.amount is None else str(self.amount),
            "currency": self.currency,
        }


class ExternalRef(Base):
    """(system, external id) → customer; what idempotent imports and ERP sync rely on."""

    __tablename__ = "external_ref"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(60))
    external_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"))
    #: The last ETag or content hash seen, so a connector's own writes do not echo back.
    last_seen: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("system", "external_id"),
        Index("ix_external_ref_customer_id", "customer_id"),
        MYSQL_TABLE_OPTIONS,
    )


class AuditEntry(Base):
    """Who changed what and when, with the before/after of every changed field."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    entity: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(20))
    changes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)

    __table_args__ = (Index("ix_audit_entry_entity", "entity", "entity_id", "id"),
                      MYSQL_TABLE_OPTIONS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "action": self.action,
            "changes": self.changes,
        }


class OutboxEvent(Base):
    """A domain event, written in the transaction of the change that raised it."""

    __tablename__ = "outbox_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    actor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Plugins that have handled the event, so a retry only calls the ones that failed.
    delivered_to: Mapped[list[str]] = mapped_column(Json, default=list)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_outbox_event_due", "status", "next_attempt_at", "id"),
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
        MYSQL_TABLE_OPTIONS,
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "payload": self.payload,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "delivered_to": list(self.delivered_to or []),
            "last_error": self.last_error,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
        }


class PluginState(Base):
    """Which plugins have tables in this database, and at which plugin version."""

    __tablename__ = "plugin_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[str] = mapped_column(String(40))
    installed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    upgraded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)


class WorkflowInstance(Base):
    """One run of a workflow for one subject: its current state and data."""

    __tablename__ = "workflow_instance"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow: Mapped[str] = mapped_column(String(60))
    #: What it runs for: ``customer`` or a plugin's record type, and that record's id.
    subject_type: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[str] = mapped_column(String(100))
    #: The customer the subject belongs to; guards are evaluated against it.
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state_entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        UniqueConstraint("workflow", "subject_type", "subject_id"),
        Index("ix_workflow_instance_customer_id", "customer_id"),
        Index("ix_workflow_instance_state", "workflow", "state"),
        MYSQL_TABLE_OPTIONS,
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "customer_id": self.customer_id,
            "state": self.state,
            "data": dict(self.data or {}),
            "state_entered_at": self.state_entered_at.isoformat(),
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "version": self.version,
        }


class WorkflowStep(Base):
    """One entry of an instance's history: a start or a transition."""

    __tablename__ = "workflow_step"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_instance.id", ondelete="CASCADE")
    )
    transition: Mapped[str] = mapped_column(String(60))
    from_state: Mapped[str | None] = mapped_column(String(60))
    to_state: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)

    __table_args__ = (
        Index("ix_workflow_step_instance", "instance_id", "id"),
        MYSQL_TABLE_OPTIONS,
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance_id": self.instance_id,
            "transition": self.transition,
            "from": self.from_state,
            "to": self.to_state,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "data": dict(self.data or {}),
        }


class WorkflowTimer(Base):
    """A transition armed to fire by itself at ``due_at``; fired exactly once."""

    __tablename__ = "workflow_timer"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("workflow_instance.id", ondelete="CASCADE")
    )
    transition: Mapped[str] = mapped_column(String(60))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    fired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_workflow_timer_due", "status", "due_at"),
        Index("ix_workflow_timer_instance", "instance_id"),
        CheckConstraint("status IN ('pending', 'fired', 'failed', 'cancelled')", name="status"),
        MYSQL_TABLE_OPTIONS,
    )


class RuleExecution(Base):
    """An automation rule acted on an event: a redelivery never acts twice."""

    __tablename__ = "rule_execution"

    rule: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)
