"""sms: per-second send counters of each resource, in all and per destination country (quotas)

Revision ID: 0005_sms_send_counters
Revises: 0004_sms
Create Date: 2026-11-29 04:55:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sms_send_counters"
down_revision = "0004_sms"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_send_counters",
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("second", sa.BigInteger(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_sms_send_counters_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_id", "scope", "second", name=op.f("pk_sms_send_counters")),
    )


def downgrade() -> None:
    op.drop_table("sms_send_counters")
