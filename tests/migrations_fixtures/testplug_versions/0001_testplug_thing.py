"""testplug: its first table, which refers to the kernel's customers.

Revision ID: 0001_testplug
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigId

revision = "0001_testplug"
down_revision = None
branch_labels = ("testplug",)
# The foreign key needs the kernel's customer table: upgrade the kernel first.
depends_on = "0001_kernel"


def upgrade() -> None:
    op.create_table(
        "testplug_thing",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("customer_id", BigId,
                  sa.ForeignKey("customer.id", name="fk_testplug_thing_customer_id_customer",
                                ondelete="CASCADE"),
                  nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        mysql_charset="utf8mb4", mysql_collate="utf8mb4_nopad_bin",
    )


def downgrade() -> None:
    op.drop_table("testplug_thing")
