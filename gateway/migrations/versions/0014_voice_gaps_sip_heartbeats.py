"""sip_processes (a heartbeat row per ``trunkline sip`` process) and calls.state_since

The sweeper ends the calls of a SIP process whose heartbeat stopped, outbound calls no SIP
process took, and calls stuck in answering/disconnecting; state_since is its clock.

Revision ID: 0014_voice_gaps_sip_heartbeats
Revises: 0013_sms_waiting_for_bind
Create Date: 2026-12-06 19:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.core.db

revision = "0014_voice_gaps_sip_heartbeats"
down_revision = "0013_sms_waiting_for_bind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sip_processes",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_processes")),
    )
    with op.batch_alter_table("sip_processes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_processes_heartbeat_at"), ["heartbeat_at"], unique=False)
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state_since", gateway.core.db.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("state_since")
    with op.batch_alter_table("sip_processes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_processes_heartbeat_at"))
    op.drop_table("sip_processes")
