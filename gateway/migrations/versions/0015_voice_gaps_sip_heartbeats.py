"""sip_processes (a heartbeat row per ``trunkline sip`` process) and calls.state_since

The sweeper ends the calls of a SIP process whose heartbeat stopped, outbound calls no SIP
process took, and calls stuck in answering/disconnecting; state_since is its clock.
sip_trunks.registration_*: the last outcome of a trunk's REGISTER, for `trunkline sip status`.

Revision ID: 0015_voice_gaps_sip_heartbeats
Revises: 0014_media_parties_legs
Create Date: 2026-12-06 19:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.core.db

revision = "0015_voice_gaps_sip_heartbeats"
down_revision = "0014_media_parties_legs"
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
    with op.batch_alter_table("sip_trunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registration_state", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("registration_status", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("registration_reason", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("registration_expires_at", gateway.core.db.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("registration_updated_at", gateway.core.db.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("sip_trunks", schema=None) as batch_op:
        for column in (
            "registration_updated_at",
            "registration_expires_at",
            "registration_reason",
            "registration_status",
            "registration_state",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("state_since")
    with op.batch_alter_table("sip_processes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_processes_heartbeat_at"))
    op.drop_table("sip_processes")
