"""sms: smpp connections and routes, messages, segments, opt-outs, pending receipts, inbound

Revision ID: 0004_sms
Revises: 0003
Create Date: 2026-11-29 03:16:48.689814
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.core.db

revision = "0004_sms"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smpp_connections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("tls", sa.Boolean(), nullable=False),
        sa.Column("system_id", sa.String(length=16), nullable=False),
        sa.Column("password", sa.String(length=64), nullable=False),
        sa.Column("system_type", sa.String(length=13), nullable=False),
        sa.Column("bind_mode", sa.String(length=24), nullable=False),
        sa.Column("source_ton", sa.Integer(), nullable=False),
        sa.Column("source_npi", sa.Integer(), nullable=False),
        sa.Column("dest_ton", sa.Integer(), nullable=False),
        sa.Column("dest_npi", sa.Integer(), nullable=False),
        sa.Column("window_size", sa.Integer(), nullable=False),
        sa.Column("max_submits_per_second", sa.Double(), nullable=False),
        sa.Column("enquire_link_interval", sa.Double(), nullable=False),
        sa.Column("reconnect_backoff_initial", sa.Double(), nullable=False),
        sa.Column("reconnect_backoff_max", sa.Double(), nullable=False),
        sa.Column("default_data_coding", sa.String(length=8), nullable=False),
        sa.Column("resp_id_format", sa.String(length=8), nullable=False),
        sa.Column("receipt_id_format", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smpp_connections")),
        sa.UniqueConstraint("name", name=op.f("uq_smpp_connections_name")),
    )
    op.create_table(
        "sms_inbound",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=True),
        sa.Column("from_number", sa.String(length=20), nullable=False),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segment_count", sa.Integer(), nullable=False),
        sa.Column("keyword", sa.String(length=16), nullable=True),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("received_at", gateway.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_inbound")),
    )
    with op.batch_alter_table("sms_inbound", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_inbound_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "sms_optouts",
        sa.Column("from_number", sa.String(length=20), nullable=False),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("from_number", "to_number", name=op.f("pk_sms_optouts")),
    )
    op.create_table(
        "sms_pending_receipts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("smsc_message_id", sa.String(length=65), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=16), nullable=True),
        sa.Column("received_at", gateway.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_pending_receipts")),
    )
    with op.batch_alter_table("sms_pending_receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_pending_receipts_id", ["connection_id", "smsc_message_id"], unique=False
        )

    op.create_table(
        "smpp_routes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["smpp_connections.id"],
            name=op.f("fk_smpp_routes_connection_id_smpp_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smpp_routes")),
        sa.UniqueConstraint("prefix", "connection_id", name=op.f("uq_smpp_routes_prefix")),
    )
    with op.batch_alter_table("smpp_routes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_smpp_routes_prefix"), ["prefix"], unique=False)

    op.create_table(
        "sms_messages",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("from_number", sa.String(length=20), nullable=False),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("segment_count", sa.Integer(), nullable=False),
        sa.Column("data_coding", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=1024), nullable=True),
        sa.Column("enable_delivery_report", sa.Boolean(), nullable=False),
        sa.Column("delivery_report_timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("repeatability_request_id", sa.String(length=64), nullable=True),
        sa.Column("repeatability_first_sent", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("in_doubt", sa.Boolean(), nullable=False),
        sa.Column("possible_duplicates", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", gateway.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", gateway.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("tried_connections", sa.Text(), nullable=False),
        sa.Column("concat_reference", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", gateway.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", gateway.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dlr_deadline", gateway.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", gateway.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivery_status", sa.String(length=16), nullable=True),
        sa.Column("delivery_status_details", sa.Text(), nullable=True),
        sa.Column("report_received_at", gateway.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("segments_succeeded", sa.Integer(), nullable=False),
        sa.Column("segments_failed", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_sms_messages_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_messages")),
        sa.UniqueConstraint(
            "resource_id", "repeatability_request_id", name=op.f("uq_sms_messages_resource_id")
        ),
    )
    with op.batch_alter_table("sms_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_messages_dlr_deadline"), ["dlr_deadline"], unique=False)
        batch_op.create_index("ix_sms_messages_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_sms_messages_resource_created", ["resource_id", "created_at"], unique=False)

    op.create_table(
        "sms_segments",
        sa.Column("message_id", sa.String(length=80), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=True),
        sa.Column("smsc_message_id", sa.String(length=65), nullable=True),
        sa.Column("submit_state", sa.String(length=12), nullable=False),
        sa.Column("submit_status", sa.Integer(), nullable=True),
        sa.Column("receipt_state", sa.Integer(), nullable=True),
        sa.Column("receipt_error", sa.String(length=16), nullable=True),
        sa.Column("receipt_at", gateway.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["sms_messages.id"],
            name=op.f("fk_sms_segments_message_id_sms_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "sequence", name=op.f("pk_sms_segments")),
    )
    with op.batch_alter_table("sms_segments", schema=None) as batch_op:
        batch_op.create_index("ix_sms_segments_smsc_id", ["connection_id", "smsc_message_id"], unique=False)
    op.create_table(
        "sms_inbound_parts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=21), nullable=False),
        sa.Column("destination", sa.String(length=21), nullable=False),
        sa.Column("reference", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("reference_bits", sa.Integer(), nullable=False),
        sa.Column("data_coding", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("udh", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_inbound_parts")),
    )
    with op.batch_alter_table("sms_inbound_parts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sms_inbound_parts_set", ["source", "destination", "reference", "total"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_inbound_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_inbound_parts_set")

    op.drop_table("sms_inbound_parts")
    with op.batch_alter_table("sms_segments", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_segments_smsc_id")

    op.drop_table("sms_segments")
    with op.batch_alter_table("sms_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_messages_resource_created")
        batch_op.drop_index("ix_sms_messages_due")
        batch_op.drop_index(batch_op.f("ix_sms_messages_dlr_deadline"))

    op.drop_table("sms_messages")
    with op.batch_alter_table("smpp_routes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_smpp_routes_prefix"))

    op.drop_table("smpp_routes")
    with op.batch_alter_table("sms_pending_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_pending_receipts_id")

    op.drop_table("sms_pending_receipts")
    op.drop_table("sms_optouts")
    with op.batch_alter_table("sms_inbound", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_inbound_resource_id"))

    op.drop_table("sms_inbound")
    op.drop_table("smpp_connections")
