"""The plugin's table, on the kernel's declarative base and prefixed with its name."""

from __future__ import annotations

import datetime as dt

from crmkit.db import Base, BigId, UTCDateTime, utcnow
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ["DuplicateFlag"]


class DuplicateFlag(Base):
    """``customer_id`` looks like a duplicate of ``duplicate_of_id`` (by ``reason``)."""

    __tablename__ = "dataquality_duplicate"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE")
    )
    duplicate_of_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE")
    )
    #: "email" or "phone": what the two customers share.
    reason: Mapped[str] = mapped_column(String(20))
    detected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("customer_id", "duplicate_of_id", "reason",
                         name="uq_dataquality_duplicate_pair"),
        Index("ix_dataquality_duplicate_duplicate_of_id", "duplicate_of_id"),
    )
