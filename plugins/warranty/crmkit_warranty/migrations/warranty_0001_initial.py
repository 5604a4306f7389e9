"""warranty_*: products, registered units, ownership history, claims and alerts.

Revision ID: warranty_0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from crmkit.db import BigId, UTCDateTime

revision: str = "warranty_0001"
down_revision: str | Sequence[str] | None = None
# The plugin's own branch, labelled with its name. It needs the kernel's customer and
# interaction tables.
branch_labels: str | Sequence[str] | None = ("warranty",)
depends_on: str | Sequence[str] | None = "0001_kernel"


def upgrade() -> None:
    op.create_table(
        "warranty_product",
        sa.Column("id", BigId, nullable=False),
        sa.Column("sku", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("product_line", sa.String(length=100), nullable=False),
        sa.Column("warranty_months", sa.Integer(), nullable=False),
        sa.Column("extended_months", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_product")),
        sa.UniqueConstraint("sku", name=op.f("uq_warranty_product_sku")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_nopad_bin",
    )
    op.create_index(
        op.f("ix_warranty_product_product_line"), "warranty_product", ["product_line"], unique=False
    )
    op.create_table(
        "warranty_unit",
        sa.Column("id", BigId, nullable=False),
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("serial", sa.String(length=100), nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("purchase_date", sa.Date(), nullable=False),
        sa.Column("purchase_month", sa.String(length=7), nullable=False),
        sa.Column("batch", sa.String(length=100), nullable=True),
        sa.Column("extended", sa.Boolean(), nullable=False),
        sa.Column("warranty_start", sa.Date(), nullable=False),
        sa.Column("warranty_end", sa.Date(), nullable=False),
        sa.Column("extended_end", sa.Date(), nullable=True),
        sa.Column("purchase_interaction_id", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_warranty_unit_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["warranty_product.id"],
            name=op.f("fk_warranty_unit_product_id_warranty_product"),
        ),
        sa.ForeignKeyConstraint(
            ["purchase_interaction_id"],
            ["interaction.id"],
            name=op.f("fk_warranty_unit_purchase_interaction_id_interaction"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_unit")),
        sa.UniqueConstraint("product_id", "serial", name="uq_warranty_unit_product_id_serial"),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_nopad_bin",
    )
    op.create_index("ix_warranty_unit_customer_id", "warranty_unit", ["customer_id"], unique=False)
    op.create_index(
        "ix_warranty_unit_product_id_batch", "warranty_unit", ["product_id", "batch"], unique=False
    )
    op.create_index(
        "ix_warranty_unit_purchase_month", "warranty_unit", ["purchase_month"], unique=False
    )
    op.create_table(
        "warranty_claim",
        sa.Column("id", BigId, nullable=False),
        sa.Column("unit_id", BigId, nullable=True),
        sa.Column("product_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("defect_code", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.Column("entitlement", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=60), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("opened_month", sa.String(length=7), nullable=False),
        sa.Column("days_since_purchase", sa.Integer(), nullable=True),
        sa.Column("triage_due_at", UTCDateTime(), nullable=False),
        sa.Column("resolution_due_at", UTCDateTime(), nullable=False),
        sa.Column("triaged_at", UTCDateTime(), nullable=True),
        sa.Column("triage_breached", sa.Boolean(), nullable=False),
        sa.Column("resolution_breached", sa.Boolean(), nullable=False),
        sa.Column("remedy", sa.String(length=20), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("workflow_instance_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_warranty_claim_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["warranty_product.id"],
            name=op.f("fk_warranty_claim_product_id_warranty_product"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["warranty_unit.id"], name=op.f("fk_warranty_claim_unit_id_warranty_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_claim")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_nopad_bin",
    )
    op.create_index(
        "ix_warranty_claim_customer_id", "warranty_claim", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_warranty_claim_opened_month", "warranty_claim", ["opened_month"], unique=False
    )
    op.create_index(
        "ix_warranty_claim_product_id_state",
        "warranty_claim",
        ["product_id", "state"],
        unique=False,
    )
    op.create_index("ix_warranty_claim_unit_id", "warranty_claim", ["unit_id"], unique=False)
    op.create_table(
        "warranty_ownership",
        sa.Column("id", BigId, nullable=False),
        sa.Column("unit_id", BigId, nullable=False),
        sa.Column("customer_id", BigId, nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customer.id"],
            name=op.f("fk_warranty_ownership_customer_id_customer"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["warranty_unit.id"],
            name=op.f("fk_warranty_ownership_unit_id_warranty_unit"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_ownership")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_nopad_bin",
    )
    op.create_index(
        "ix_warranty_ownership_customer_id", "warranty_ownership", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_warranty_ownership_unit_id", "warranty_ownership", ["unit_id"], unique=False
    )
    op.create_table(
        "warranty_alert",
        sa.Column("id", BigId, nullable=False),
        sa.Column("rule", sa.String(length=60), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("scope_key", sa.String(length=200), nullable=False),
        sa.Column("claim_id", BigId, nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("rate_percent", sa.String(length=20), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["claim_id"],
            ["warranty_claim.id"],
            name=op.f("fk_warranty_alert_claim_id_warranty_claim"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_alert")),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_nopad_bin",
    )
    op.create_index(
        "ix_warranty_alert_scope_key", "warranty_alert", ["scope", "scope_key"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_warranty_alert_scope_key", table_name="warranty_alert")
    op.drop_table("warranty_alert")
    op.drop_index("ix_warranty_ownership_unit_id", table_name="warranty_ownership")
    op.drop_index("ix_warranty_ownership_customer_id", table_name="warranty_ownership")
    op.drop_table("warranty_ownership")
    op.drop_index("ix_warranty_claim_unit_id", table_name="warranty_claim")
    op.drop_index("ix_warranty_claim_product_id_state", table_name="warranty_claim")
    op.drop_index("ix_warranty_claim_opened_month", table_name="warranty_claim")
    op.drop_index("ix_warranty_claim_customer_id", table_name="warranty_claim")
    op.drop_table("warranty_claim")
    op.drop_index("ix_warranty_unit_purchase_month", table_name="warranty_unit")
    op.drop_index("ix_warranty_unit_product_id_batch", table_name="warranty_unit")
    op.drop_index("ix_warranty_unit_customer_id", table_name="warranty_unit")
    op.drop_table("warranty_unit")
    op.drop_index(op.f("ix_warranty_product_product_line"), table_name="warranty_product")
    op.drop_table("warranty_product")
