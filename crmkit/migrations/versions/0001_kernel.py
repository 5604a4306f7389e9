"""The kernel's tables: customers, contacts, tags, interactions, external references,
audit, outbox and plugin state.

Revision ID: 0001_kernel
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crmkit.db import BigId, Json, Money, UTCDateTime

revision: str = "0001_kernel"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("crmkit",)
depends_on: str | Sequence[str] | None = None

#: MariaDB: exact, Unicode text whatever the database's defaults (see crmkit.db).
TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_nopad_bin"}


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("entity", sa.String(length=60), nullable=False),
        sa.Column("entity_id", sa.String(length=60), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("changes", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_audit_entry_entity", "audit_entry", ["entity", "entity_id", "id"])

    op.create_table(
        "customer",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("roles", Json, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("addresses", Json, nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("attributes", Json, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('person', 'organization')", name=op.f("ck_customer_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_customer_email"), "customer", ["email"])
    op.create_index(op.f("ix_customer_name"), "customer", ["name"])

    op.create_table(
        "outbox_event",
        sa.Column("id", BigId, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_to", Json, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name=op.f("ck_outbox_event_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_outbox_event_due", "outbox_event", ["status", "next_attempt_at", "id"])

    op.create_table(
        "plugin_state",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("installed_at", UTCDateTime(), nullable=False),
        sa.Column("upgraded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_plugin_state")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "customer_contact",
        sa.Column("organization_id", BigId, nullable=False),
        sa.Column("person_id", BigId, nullable=False),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["customer.id"],
            name=op.f("fk_customer_contact_organization_id_customer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["customer.id"],
            name=op.f("fk_customer_contact_person_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "person_id", name=op.f("pk_customer_contact")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "customer_tag",
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_customer_tag_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", "tag", name=op.f("pk_customer_tag")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_customer_tag_tag", "customer_tag", ["tag"])

    op.create_table(
        "external_ref",
        sa.Column("id", BigId, nullable=False),
        sa.Column("system", sa.String(length=60), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("last_seen", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_external_ref_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_ref")),
        sa.UniqueConstraint(
            "system", "external_id", name=op.f("uq_external_ref_system_external_id")
        ),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_external_ref_customer_id", "external_ref", ["customer_id"])

    op.create_table(
        "interaction",
        sa.Column("id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("amount", Money(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "direction IN ('inbound', 'outbound')", name=op.f("ck_interaction_direction")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_interaction_customer_id_customer"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction")),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_interaction_kind_occurred_at", "interaction", ["kind", "occurred_at"])
    op.create_index("ix_interaction_timeline", "interaction", ["customer_id", "occurred_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_interaction_timeline", table_name="interaction")
    op.drop_index("ix_interaction_kind_occurred_at", table_name="interaction")

    op.drop_table("interaction")
    op.drop_index("ix_external_ref_customer_id", table_name="external_ref")

    op.drop_table("external_ref")
    op.drop_index("ix_customer_tag_tag", table_name="customer_tag")

    op.drop_table("customer_tag")
    op.drop_table("customer_contact")
    op.drop_table("plugin_state")
    op.drop_index("ix_outbox_event_due", table_name="outbox_event")

    op.drop_table("outbox_event")
    op.drop_index(op.f("ix_customer_name"), table_name="customer")
    op.drop_index(op.f("ix_customer_email"), table_name="customer")

    op.drop_table("customer")
    op.drop_index("ix_audit_entry_entity", table_name="audit_entry")

    op.drop_table("audit_entry")
