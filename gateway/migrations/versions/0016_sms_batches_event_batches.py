"""Event Grid batching: event_subscriptions.max_events_per_batch / preferred_batch_size_kb and
event_deliveries.batch_id

A batching subscription (more than one event per batch) fixes each delivery's batch when it is
first claimed, so a failed batch is retried as that batch, under the same webhook-id. The index
is partial: subscriptions that do not batch (the default) write no index entries.

Revision ID: 0016_sms_batches_event_batches
Revises: 0015_voice_gaps_sip_heartbeats
Create Date: 2026-12-06 19:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_sms_batches_event_batches"
down_revision = "0015_voice_gaps_sip_heartbeats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_subscriptions") as batch:
        batch.add_column(sa.Column("max_events_per_batch", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(
            sa.Column("preferred_batch_size_kb", sa.Integer(), server_default="64", nullable=False)
        )
    with op.batch_alter_table("event_deliveries") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(36), nullable=True))
    op.create_index(
        "ix_event_deliveries_batch",
        "event_deliveries",
        ["batch_id"],
        postgresql_where=sa.text("batch_id IS NOT NULL"),
        sqlite_where=sa.text("batch_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_event_deliveries_batch", table_name="event_deliveries")
    with op.batch_alter_table("event_deliveries") as batch:
        batch.drop_column("batch_id")
    with op.batch_alter_table("event_subscriptions") as batch:
        batch.drop_column("preferred_batch_size_kb")
        batch.drop_column("max_events_per_batch")
