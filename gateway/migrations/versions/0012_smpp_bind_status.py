"""smpp_bind_status: each bind's state as the SMPP process holding it publishes it

One row per (connection, SMPP process): bound / connecting / failing, since when, the last
error, the window in use and the messages sent in the last minute, refreshed every second.

Revision ID: 0012_smpp_bind_status
Revises: 0011_calls
Create Date: 2026-12-06 18:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.core.db

revision = "0012_smpp_bind_status"
down_revision = "0011_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "smpp_bind_status",
        sa.Column("connection_id", sa.String(length=36), nullable=False),
        sa.Column("process", sa.String(length=128), nullable=False),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=256), nullable=False),
        sa.Column("window_in_use", sa.Integer(), nullable=False),
        sa.Column("sent_last_minute", sa.Integer(), nullable=False),
        sa.Column("updated_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["connection_id"], ["smpp_connections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("connection_id", "process"),
    )


def downgrade() -> None:
    op.drop_table("smpp_bind_status")
