"""dataquality_duplicate: pairs of customers that look like the same one.

Revision ID: dataquality_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from crmkit.db import BigId, UTCDateTime

revision: str = "dataquality_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("dataquality",)
depends_on: str | Sequence[str] | None = "0001_kernel"


def upgrade() -> None:
    op.create_table(
        "dataquality_duplicate",
        sa.Column("id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("duplicate_of_id", BigId, nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE",
                                name=op.f("fk_dataquality_duplicate_customer_id_customer")),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"], ["customer.id"], ondelete="CASCADE",
            name=op.f("fk_dataquality_duplicate_duplicate_of_id_customer"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataquality_duplicate")),
        sa.UniqueConstraint("customer_id", "duplicate_of_id", "reason",
                            name=op.f("uq_dataquality_duplicate_pair")),
    )
    op.create_index("ix_dataquality_duplicate_duplicate_of_id", "dataquality_duplicate",
                    ["duplicate_of_id"])


def downgrade() -> None:
    op.drop_table("dataquality_duplicate")
