"""surveys_survey, surveys_invitation, surveys_response.

Revision ID: surveys_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from crmkit.db import BigId, Json, UTCDateTime

revision: str = "surveys_0001"
down_revision: str | Sequence[str] | None = None
# The plugin's own branch, labelled with its name; it needs the kernel's customer table.
branch_labels: str | Sequence[str] | None = ("surveys",)
depends_on: str | Sequence[str] | None = "0001_kernel"

TABLE_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_nopad_bin"}


def upgrade() -> None:
    op.create_table(
        "surveys_survey",
        sa.Column("id", BigId, nullable=False),
        sa.Column("key", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("audience", sa.String(20), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("definition", Json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys_survey")),
        sa.UniqueConstraint("key", "version", name=op.f("uq_surveys_survey_key_version")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "surveys_invitation",
        sa.Column("id", BigId, nullable=False),
        sa.Column("survey_id", BigId, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("customer_id", BigId, nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("department", sa.String(100), nullable=True),
        sa.Column("role", sa.String(100), nullable=True),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("last_reminded_at", UTCDateTime(), nullable=True),
        sa.Column("answered", sa.String(10), nullable=True),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys_survey.id"],
                                name=op.f("fk_surveys_invitation_survey_id_surveys_survey")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE",
                                name=op.f("fk_surveys_invitation_customer_id_customer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys_invitation")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_surveys_invitation_token_hash")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_surveys_invitation_survey_id", "surveys_invitation", ["survey_id"])
    op.create_index("ix_surveys_invitation_customer_id_sent_at", "surveys_invitation",
                    ["customer_id", "sent_at"])
    op.create_table(
        "surveys_response",
        sa.Column("id", BigId, nullable=False),
        sa.Column("survey_id", BigId, nullable=False),
        sa.Column("invitation_id", BigId, nullable=True),
        sa.Column("customer_id", BigId, nullable=True),
        sa.Column("department", sa.String(100), nullable=True),
        sa.Column("role", sa.String(100), nullable=True),
        sa.Column("segment", sa.String(100), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("answers", Json, nullable=False),
        sa.Column("submitted_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(["survey_id"], ["surveys_survey.id"],
                                name=op.f("fk_surveys_response_survey_id_surveys_survey")),
        sa.ForeignKeyConstraint(["invitation_id"], ["surveys_invitation.id"],
                                ondelete="SET NULL",
                                name=op.f("fk_surveys_response_invitation_id_surveys_invitation")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="SET NULL",
                                name=op.f("fk_surveys_response_customer_id_customer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys_response")),
        sa.UniqueConstraint("invitation_id", name=op.f("uq_surveys_response_invitation_id")),
        sa.UniqueConstraint("survey_id", "external_id",
                            name=op.f("uq_surveys_response_survey_id_external_id")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_surveys_response_customer_id", "surveys_response", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_surveys_response_customer_id", table_name="surveys_response")
    op.drop_table("surveys_response")
    op.drop_index("ix_surveys_invitation_customer_id_sent_at", table_name="surveys_invitation")
    op.drop_index("ix_surveys_invitation_survey_id", table_name="surveys_invitation")
    op.drop_table("surveys_invitation")
    op.drop_table("surveys_survey")
