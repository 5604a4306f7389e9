"""The plugin's table, on the kernel's declarative base and prefixed with its name."""

from __future__ import annotations

import datetime as dt

from crmkit.db import Base, BigId, UTCDateTime, utcnow
from sqlalchemy import BigInteger, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ["LoyaltyAccount"]


class LoyaltyAccount(Base):
    """A customer's points: one row per customer who ever earned any."""

    __tablename__ = "loyalty_account"

    customer_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True
    )
    #: Lifetime points earned; the tier follows from them and the configured thresholds.
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    # `crmkit loyalty top` reads the best accounts first.
    __table_args__ = (Index("ix_loyalty_account_points", "points"),)
