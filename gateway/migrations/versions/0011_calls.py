"""calls: call connections and their SIP legs; callback subscriptions and addressed events

``calls`` (a call connection's state, parties, callback URI and the SIP process holding it) and
``call_legs`` (each SIP dialog and the worker holding it); ``event_subscriptions.kind``
(webhook | callback) and ``event_outbox.subscription_id`` (an event for one subscription only).

Revision ID: 0011_calls
Revises: 0010_secrets_at_rest
Create Date: 2026-12-06 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.core.db

revision = "0011_calls"
down_revision = "0010_secrets_at_rest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("server_call_id", sa.String(length=128), nullable=False),
        sa.Column("correlation_id", sa.String(length=36), nullable=False),
        sa.Column("source_number", sa.String(length=32), nullable=False),
        sa.Column("target_number", sa.String(length=32), nullable=False),
        sa.Column("caller_display_name", sa.String(length=256), nullable=False),
        sa.Column("callback_uri", sa.String(length=2048), nullable=True),
        sa.Column("callback_subscription_id", sa.String(length=36), nullable=True),
        sa.Column("operation_context", sa.String(length=1024), nullable=True),
        sa.Column("sip_process", sa.String(length=128), nullable=False),
        sa.Column("ring_deadline", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("destinations", sa.JSON(), nullable=False),
        sa.Column("destination_index", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Boolean(), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("connected_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("ended_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["resource_id"], ["resources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_resource_id"), ["resource_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calls_server_call_id"), ["server_call_id"], unique=False)
        batch_op.create_index("ix_calls_process_state", ["sip_process", "state"], unique=False)
    op.create_table(
        "call_legs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("sip_process", sa.String(length=128), nullable=False),
        sa.Column("worker", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("sip_call_id", sa.String(length=256), nullable=False),
        sa.Column("remote", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("ended_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_legs_call_id"), ["call_id"], unique=False)
    with op.batch_alter_table("event_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="webhook"))
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.drop_column("subscription_id")
    with op.batch_alter_table("event_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("call_legs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_legs_call_id"))
    op.drop_table("call_legs")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_process_state")
        batch_op.drop_index(batch_op.f("ix_calls_server_call_id"))
        batch_op.drop_index(batch_op.f("ix_calls_resource_id"))
    op.drop_table("calls")
