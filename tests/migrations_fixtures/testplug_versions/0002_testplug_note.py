"""testplug: a second revision, so that the branch has more than its base.

Revision ID: 0002_testplug
Revises: 0001_testplug
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_testplug"
down_revision = "0001_testplug"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("testplug_thing") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("testplug_thing") as batch:
        batch.drop_column("note")
