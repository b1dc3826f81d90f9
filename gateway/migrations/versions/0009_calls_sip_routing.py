"""calls: the operator's SIP trunks and prefix routes, and each tenant's SIP configuration

``sip_trunks`` and ``sip_routes`` (trunks of carriers of kind sip, routes by E.164 prefix with
ordered trunks); ``tenant_sip_trunks`` and ``tenant_sip_routes`` (SipRouting 2023-03-01: trunks
by FQDN, routes in order with a numberPattern).

Revision ID: 0009_calls_sip_routing
Revises: 0008_sms_validity_period
Create Date: 2026-12-06 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.core.db

revision = "0009_calls_sip_routing"
down_revision = "0008_sms_validity_period"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_trunks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("carrier_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=3), nullable=False),
        sa.Column("allowed_networks", sa.JSON(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=True),
        sa.Column("password", sa.String(length=128), nullable=True),
        sa.Column("register", sa.Boolean(), nullable=False),
        sa.Column("codecs", sa.JSON(), nullable=False),
        sa.Column("srtp", sa.String(length=9), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"],
            ["carriers.id"],
            name=op.f("fk_sip_trunks_carrier_id_carriers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_trunks")),
        sa.UniqueConstraint("name", name=op.f("uq_sip_trunks_name")),
    )
    with op.batch_alter_table("sip_trunks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_trunks_carrier_id"), ["carrier_id"], unique=False)

    op.create_table(
        "tenant_sip_routes",
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=True),
        sa.Column("number_pattern", sa.String(length=1024), nullable=False),
        sa.Column("trunks", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_tenant_sip_routes_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_id", "position", name=op.f("pk_tenant_sip_routes")),
    )
    op.create_table(
        "tenant_sip_trunks",
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("fqdn", sa.String(length=249), nullable=False),
        sa.Column("sip_signaling_port", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_tenant_sip_trunks_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_id", "fqdn", name=op.f("pk_tenant_sip_trunks")),
    )
    op.create_table(
        "sip_routes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("trunk_id", sa.String(length=36), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trunk_id"],
            ["sip_trunks.id"],
            name=op.f("fk_sip_routes_trunk_id_sip_trunks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_routes")),
        sa.UniqueConstraint("prefix", "trunk_id", name=op.f("uq_sip_routes_prefix")),
    )
    with op.batch_alter_table("sip_routes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_routes_prefix"), ["prefix"], unique=False)
        batch_op.create_index(batch_op.f("ix_sip_routes_trunk_id"), ["trunk_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sip_routes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_routes_trunk_id"))
        batch_op.drop_index(batch_op.f("ix_sip_routes_prefix"))

    op.drop_table("sip_routes")
    op.drop_table("tenant_sip_trunks")
    op.drop_table("tenant_sip_routes")
    with op.batch_alter_table("sip_trunks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_trunks_carrier_id"))

    op.drop_table("sip_trunks")
