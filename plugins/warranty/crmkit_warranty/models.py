"""The plugin's tables: on crmkit's declarative base, named with the ``warranty_`` prefix.

Claims carry a few denormalised columns (``product_id``, ``opened_month``,
``days_since_purchase``, ``resolution_seconds``, ``state``) so that every defect report is
one portable ``GROUP BY`` in SQL, on SQLite, PostgreSQL and MariaDB alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmkit.db import MYSQL_TABLE_OPTIONS, Base, BigId, UTCDateTime, utcnow
from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ["WarrantyAlert", "WarrantyClaim", "WarrantyOwnership", "WarrantyProduct",
           "WarrantyUnit"]


class WarrantyProduct(Base):
    """A catalogue entry: what is sold and its warranty terms."""

    __tablename__ = "warranty_product"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sku: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    product_line: Mapped[str] = mapped_column(String(100), index=True)
    warranty_months: Mapped[int] = mapped_column(Integer)
    #: Months an extended warranty adds after the standard one (``None``: none offered).
    extended_months: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (MYSQL_TABLE_OPTIONS,)

    def to_dict(self) -> dict[str, Any]:
        return {"sku": self.sku, "name": self.name, "product_line": self.product_line,
                "warranty_months": self.warranty_months,
                "extended_months": self.extended_months}


class WarrantyUnit(Base):
    """One registered unit: a serial number of a product, owned by a customer."""

    __tablename__ = "warranty_unit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("warranty_product.id"))
    serial: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer.id"))
    purchase_date: Mapped[dt.date] = mapped_column(Date)
    #: ``YYYY-MM`` of the purchase: units in service at a month, compared as text.
    purchase_month: Mapped[str] = mapped_column(String(7))
    batch: Mapped[str | None] = mapped_column(String(100))
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    warranty_start: Mapped[dt.date] = mapped_column(Date)
    warranty_end: Mapped[dt.date] = mapped_column(Date)
    extended_end: Mapped[dt.date | None] = mapped_column(Date)
    purchase_interaction_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("interaction.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("product_id", "serial", name="uq_warranty_unit_product_id_serial"),
        Index("ix_warranty_unit_customer_id", "customer_id"),
        Index("ix_warranty_unit_product_id_batch", "product_id", "batch"),
        Index("ix_warranty_unit_purchase_month", "purchase_month"),
        MYSQL_TABLE_OPTIONS,
    )


class WarrantyOwnership(Base):
    """Who owned a unit from when to when; the open row (``until`` null) is the owner."""

    __tablename__ = "warranty_ownership"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_id: Mapped[int] = mapped_column(BigId, ForeignKey("warranty_unit.id",
                                                           ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer.id"))
    since: Mapped[dt.date] = mapped_column(Date)
    until: Mapped[dt.date | None] = mapped_column(Date)
    actor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_warranty_ownership_unit_id", "unit_id"),
                      Index("ix_warranty_ownership_customer_id", "customer_id"),
                      MYSQL_TABLE_OPTIONS)


class WarrantyClaim(Base):
    """A defect report against a unit (or a product and customer when the serial is unknown)."""

    __tablename__ = "warranty_claim"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unit_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("warranty_unit.id"))
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("warranty_product.id"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer.id"))
    defect_code: Mapped[str] = mapped_column(String(40))
    description: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(40))
    #: ``in_warranty``, ``extended``, ``expired`` or ``unknown`` (no unit), at opening.
    entitlement: Mapped[str] = mapped_column(String(20))
    #: Mirror of the workflow instance's state, kept in the same transaction.
    state: Mapped[str] = mapped_column(String(60))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_month: Mapped[str] = mapped_column(String(7))
    days_since_purchase: Mapped[int | None] = mapped_column(Integer)
    triage_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolution_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    triaged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    triage_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    resolution_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``repair``, ``replace`` or ``refund``: the remedy chosen.
    remedy: Mapped[str | None] = mapped_column(String(20))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    workflow_instance_id: Mapped[int | None] = mapped_column(BigId)

    __table_args__ = (
        Index("ix_warranty_claim_product_id_state", "product_id", "state"),
        Index("ix_warranty_claim_unit_id", "unit_id"),
        Index("ix_warranty_claim_customer_id", "customer_id"),
        Index("ix_warranty_claim_opened_month", "opened_month"),
        MYSQL_TABLE_OPTIONS,
    )


class WarrantyAlert(Base):
    """A threshold crossing, recorded in the transaction of the claim that crossed it."""

    __tablename__ = "warranty_alert"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(String(60))
    scope: Mapped[str] = mapped_column(String(20))
    scope_key: Mapped[str] = mapped_column(String(200))
    claim_id: Mapped[int] = mapped_column(BigId, ForeignKey("warranty_claim.id"))
    claims: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)
    rate_percent: Mapped[str] = mapped_column(String(20))
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_warranty_alert_scope_key", "scope", "scope_key"),
                      MYSQL_TABLE_OPTIONS)
