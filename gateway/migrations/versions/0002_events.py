"""events: subscriptions, outbox, deliveries (the dead-letter store), attempt log

Revision ID: 0002_events
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.core.db

revision = "0002_events"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "event_outbox",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=1024), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("event_time", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("dispatched_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_event_outbox_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_outbox")),
    )
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_event_outbox_pending", ["dispatched_at", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_outbox_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "event_subscriptions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("endpoint_url", sa.String(length=2048), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("subject_begins_with", sa.String(length=1024), nullable=True),
        sa.Column("subject_ends_with", sa.String(length=1024), nullable=True),
        sa.Column("delivery_schema", sa.String(length=32), nullable=False),
        sa.Column("max_delivery_attempts", sa.Integer(), nullable=False),
        sa.Column("event_ttl_minutes", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("previous_secret", sa.String(length=128), nullable=True),
        sa.Column("previous_secret_expires_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_detail", sa.Text(), nullable=True),
        sa.Column("validation_code", sa.String(length=64), nullable=False),
        sa.Column("validation_attempts", sa.Integer(), nullable=False),
        sa.Column("validation_next_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("validated_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_event_subscriptions_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_subscriptions")),
    )
    with op.batch_alter_table("event_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_subscriptions_resource_id"), ["resource_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_event_subscriptions_validation_next_at"), ["validation_next_at"], unique=False
        )

    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("enqueued_until", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("claimed_until", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("expires_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("finished_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("dead_letter_reason", sa.String(length=64), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_response", sa.Text(), nullable=True),
        sa.Column("replays", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event_outbox.id"],
            name=op.f("fk_event_deliveries_event_id_event_outbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["event_subscriptions.id"],
            name=op.f("fk_event_deliveries_subscription_id_event_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_deliveries")),
        sa.UniqueConstraint("event_id", "subscription_id", name=op.f("uq_event_deliveries_event_id")),
    )
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_event_deliveries_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_deliveries_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_deliveries_resource_id"), ["resource_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_event_deliveries_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "event_delivery_attempts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("delivery_id", sa.String(length=36), nullable=True),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["event_deliveries.id"],
            name=op.f("fk_event_delivery_attempts_delivery_id_event_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["event_subscriptions.id"],
            name=op.f("fk_event_delivery_attempts_subscription_id_event_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_delivery_attempts")),
    )
    with op.batch_alter_table("event_delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_delivery_attempts_delivery_id"), ["delivery_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_event_delivery_attempts_subscription_id"), ["subscription_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("event_delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_delivery_attempts_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_event_delivery_attempts_delivery_id"))

    op.drop_table("event_delivery_attempts")
    with op.batch_alter_table("event_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_deliveries_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_event_deliveries_resource_id"))
        batch_op.drop_index(batch_op.f("ix_event_deliveries_event_id"))
        batch_op.drop_index("ix_event_deliveries_due")

    op.drop_table("event_deliveries")
    with op.batch_alter_table("event_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_subscriptions_validation_next_at"))
        batch_op.drop_index(batch_op.f("ix_event_subscriptions_resource_id"))

    op.drop_table("event_subscriptions")
    with op.batch_alter_table("event_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_outbox_resource_id"))
        batch_op.drop_index("ix_event_outbox_pending")

    op.drop_table("event_outbox")
