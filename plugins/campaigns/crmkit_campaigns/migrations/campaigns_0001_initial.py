"""campaigns_*: segments, campaigns, members, consent and suppression lists.

Revision ID: campaigns_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from crmkit.db import MYSQL_TABLE_OPTIONS, BigId, Json, Money, UTCDateTime

revision: str = "campaigns_0001"
down_revision: str | Sequence[str] | None = None
# The plugin's own branch; its foreign keys need the kernel's customer table.
branch_labels: str | Sequence[str] | None = ("campaigns",)
depends_on: str | Sequence[str] | None = "0001_kernel"


def _fk(table: str, column: str, target: str, ondelete: str | None = "CASCADE"
        ) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "campaigns_segment",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("criteria", Json, nullable=False),
        sa.Column("frozen_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns_segment")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_segment_name")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "campaigns_segment_member",
        sa.Column("segment_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        _fk("campaigns_segment_member", "segment_id", "campaigns_segment"),
        _fk("campaigns_segment_member", "customer_id", "customer"),
        sa.PrimaryKeyConstraint("segment_id", "customer_id",
                                name=op.f("pk_campaigns_segment_member")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "campaigns_campaign",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("budget", Money, nullable=True),
        sa.Column("cost", Money, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("offer", Json, nullable=True),
        sa.Column("control_percent", sa.Integer(), nullable=False),
        sa.Column("variants", Json, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("workflow_instance_id", BigId, nullable=True),
        sa.Column("launches", sa.Integer(), nullable=False),
        sa.Column("launched_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns_campaign")),
        sa.UniqueConstraint("code", name=op.f("uq_campaigns_campaign_code")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "campaigns_campaign_segment",
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("segment_id", BigId, nullable=False),
        _fk("campaigns_campaign_segment", "campaign_id", "campaigns_campaign"),
        _fk("campaigns_campaign_segment", "segment_id", "campaigns_segment", None),
        sa.PrimaryKeyConstraint("campaign_id", "segment_id",
                                name=op.f("pk_campaigns_campaign_segment")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "campaigns_member",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("campaign_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("variant", sa.String(20), nullable=False),
        sa.Column("launch", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("targeted_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("responded_at", UTCDateTime(), nullable=True),
        sa.Column("converted_at", UTCDateTime(), nullable=True),
        sa.Column("opted_out_at", UTCDateTime(), nullable=True),
        sa.Column("bounced_at", UTCDateTime(), nullable=True),
        sa.Column("revenue", Money, nullable=True),
        sa.Column("conversion_ref", sa.String(100), nullable=True),
        _fk("campaigns_member", "campaign_id", "campaigns_campaign"),
        _fk("campaigns_member", "customer_id", "customer"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns_member")),
        sa.UniqueConstraint("campaign_id", "customer_id",
                            name=op.f("uq_campaigns_member_campaign_id_customer_id")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_campaigns_member_customer_id", "campaigns_member", ["customer_id"])
    op.create_table(
        "campaigns_consent",
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        _fk("campaigns_consent", "customer_id", "customer"),
        sa.PrimaryKeyConstraint("customer_id", "channel", name=op.f("pk_campaigns_consent")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_table(
        "campaigns_suppression",
        sa.Column("list_name", sa.String(60), nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        _fk("campaigns_suppression", "customer_id", "customer"),
        sa.PrimaryKeyConstraint("list_name", "customer_id",
                                name=op.f("pk_campaigns_suppression")),
        **MYSQL_TABLE_OPTIONS,
    )
    op.create_index("ix_campaigns_suppression_customer_id", "campaigns_suppression",
                    ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_campaigns_suppression_customer_id", table_name="campaigns_suppression")
    op.drop_table("campaigns_suppression")
    op.drop_table("campaigns_consent")
    op.drop_index("ix_campaigns_member_customer_id", table_name="campaigns_member")
    op.drop_table("campaigns_member")
    op.drop_table("campaigns_campaign_segment")
    op.drop_table("campaigns_campaign")
    op.drop_table("campaigns_segment_member")
    op.drop_table("campaigns_segment")
