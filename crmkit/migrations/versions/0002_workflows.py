"""Workflow instances, their history and timers; automation rule executions.

Revision ID: 0002_workflows
Revises: 0001_kernel
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigId, Json, UTCDateTime

revision: str = "0002_workflows"
down_revision: str | Sequence[str] | None = "0001_kernel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: MariaDB: exact, Unicode text whatever the database's defaults (see crmkit.db).
TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_nopad_bin"}


def upgrade() -> None:
    op.create_table(
        "workflow_instance",
        sa.Column("id", BigId, nullable=False),
        sa.Column("workflow", sa.String(length=60), nullable=False),
        sa.Column("subject_type", sa.String(length=60), nullable=False),
        sa.Column("subject_id", sa.String(length=100), nullable=False),
        sa.Column("customer_id", BigId, nullable=True),
        sa.Column("state", sa.String(length=60), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.Column("state_entered_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"],
            name=op.f("fk_workflow_instance_customer_id_customer"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_instance")),
        sa.UniqueConstraint(
            "workflow", "subject_type", "subject_id",
            name=op.f("uq_workflow_instance_workflow_subject_type_subject_id"),
        ),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_workflow_instance_customer_id", "workflow_instance", ["customer_id"])
    op.create_index("ix_workflow_instance_state", "workflow_instance", ["workflow", "state"])

    op.create_table(
        "workflow_step",
        sa.Column("id", BigId, nullable=False),
        sa.Column("instance_id", BigId, nullable=False),
        sa.Column("transition", sa.String(length=60), nullable=False),
        sa.Column("from_state", sa.String(length=60), nullable=True),
        sa.Column("to_state", sa.String(length=60), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["workflow_instance.id"],
            name=op.f("fk_workflow_step_instance_id_workflow_instance"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_step")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_workflow_step_instance", "workflow_step", ["instance_id", "id"])

    op.create_table(
        "workflow_timer",
        sa.Column("id", BigId, nullable=False),
        sa.Column("instance_id", BigId, nullable=False),
        sa.Column("transition", sa.String(length=60), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'fired', 'failed', 'cancelled')",
            name=op.f("ck_workflow_timer_status"),
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["workflow_instance.id"],
            name=op.f("fk_workflow_timer_instance_id_workflow_instance"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_timer")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_workflow_timer_due", "workflow_timer", ["status", "due_at"])
    op.create_index("ix_workflow_timer_instance", "workflow_timer", ["instance_id"])

    op.create_table(
        "rule_execution",
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rule", "event_id", name=op.f("pk_rule_execution")),
        **TABLE_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("rule_execution")
    op.drop_table("workflow_timer")
    op.drop_table("workflow_step")
    op.drop_table("workflow_instance")
