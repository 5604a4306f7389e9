"""loyalty_account: each customer's lifetime points.

Revision ID: loyalty_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from crmkit.db import BigId, UTCDateTime

revision: str = "loyalty_0001"
down_revision: str | Sequence[str] | None = None
# The plugin's own branch, labelled with its name; it needs the kernel's customer table.
branch_labels: str | Sequence[str] | None = ("loyalty",)
depends_on: str | Sequence[str] | None = "0001_kernel"


def upgrade() -> None:
    op.create_table(
        "loyalty_account",
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE",
                                name=op.f("fk_loyalty_account_customer_id_customer")),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_loyalty_account")),
    )
    op.create_index("ix_loyalty_account_points", "loyalty_account", ["points"])


def downgrade() -> None:
    op.drop_index("ix_loyalty_account_points", table_name="loyalty_account")
    op.drop_table("loyalty_account")
