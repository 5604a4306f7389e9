"""sales_lead, sales_opportunity, sales_opportunity_line, sales_task.

Revision ID: sales_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from crmkit.db import BigId, Money, UTCDateTime

revision: str = "sales_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("sales",)
depends_on: str | Sequence[str] | None = "0001_kernel"


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "sales_lead",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("contact_name", sa.String(200)),
        sa.Column("company", sa.String(200)),
        sa.Column("email", sa.String(254)),
        sa.Column("phone", sa.String(50)),
        sa.Column("title", sa.String(100)),
        sa.Column("country", sa.String(2)),
        sa.Column("source", sa.String(60), nullable=False),
        sa.Column("campaign", sa.String(100)),
        sa.Column("owner", sa.String(100)),
        sa.Column("notes", sa.Text()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.String(500)),
        sa.Column("customer_id", BigId),
        sa.Column("contact_id", BigId),
        sa.Column("opportunity_id", BigId),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("converted_at", UTCDateTime()),
        _fk("sales_lead", "customer_id", "customer", "SET NULL"),
        _fk("sales_lead", "contact_id", "customer", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_lead")),
    )
    op.create_index("ix_sales_lead_email", "sales_lead", ["email"])
    op.create_index("ix_sales_lead_status", "sales_lead", ["status"])
    op.create_table(
        "sales_opportunity",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("lead_id", BigId),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("close_date", sa.Date(), nullable=False),
        sa.Column("owner", sa.String(100)),
        sa.Column("stage", sa.String(60), nullable=False),
        sa.Column("probability", sa.Integer()),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime()),
        _fk("sales_opportunity", "customer_id", "customer", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_opportunity")),
    )
    op.create_index("ix_sales_opportunity_customer_id", "sales_opportunity", ["customer_id"])
    op.create_index("ix_sales_opportunity_stage", "sales_opportunity", ["stage"])
    op.create_index("ix_sales_opportunity_close_date", "sales_opportunity", ["close_date"])
    op.create_table(
        "sales_opportunity_line",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("opportunity_id", BigId, nullable=False),
        sa.Column("item", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(60), nullable=False),
        sa.Column("quantity", Money(), nullable=False),
        sa.Column("unit_price", Money(), nullable=False),
        _fk("sales_opportunity_line", "opportunity_id", "sales_opportunity", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_opportunity_line")),
    )
    op.create_index("ix_sales_opportunity_line_opportunity_id", "sales_opportunity_line",
                    ["opportunity_id"])
    op.create_table(
        "sales_task",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("owner", sa.String(100)),
        sa.Column("lead_id", BigId),
        sa.Column("opportunity_id", BigId),
        sa.Column("customer_id", BigId),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("outcome", sa.Text()),
        sa.Column("done_at", UTCDateTime()),
        sa.Column("interaction_id", BigId),
        sa.Column("overdue_notified_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _fk("sales_task", "lead_id", "sales_lead", "CASCADE"),
        _fk("sales_task", "opportunity_id", "sales_opportunity", "CASCADE"),
        _fk("sales_task", "customer_id", "customer", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_task")),
    )
    op.create_index("ix_sales_task_status_due_at", "sales_task", ["status", "due_at"])
    op.create_index("ix_sales_task_customer_id", "sales_task", ["customer_id"])


def downgrade() -> None:
    op.drop_table("sales_task")
    op.drop_table("sales_opportunity_line")
    op.drop_table("sales_opportunity")
    op.drop_table("sales_lead")
