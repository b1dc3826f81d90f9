"""Several parties in a call: what each leg is to the call and the participant operation on it

call_legs gain ``role`` (the call's own leg, an added participant, a transfer target), the legs
owner's ``state``, the add/transfer operation's invitation id, context, callback subscription,
caller id, route plan and invitation deadline, the leg it is bridged with, ``muted``, and the
pending remove/cancel/REFER operation (``pending``). calls gain the ParticipantsUpdated
``participants_sequence``; sip_trunks gain ``refer`` (the trunk takes REFER for transfers).

Revision ID: 0014_media_parties_legs
Revises: 0013_sms_waiting_for_bind
Create Date: 2026-12-06 19:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.core.db import UTCDateTime

revision = "0014_media_parties_legs"
down_revision = "0013_sms_waiting_for_bind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_legs") as batch:
        batch.add_column(sa.Column("role", sa.String(12), server_default="call", nullable=False))
        batch.add_column(sa.Column("state", sa.String(12), nullable=True))
        batch.add_column(sa.Column("invitation_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("operation_context", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("callback_subscription_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("source_number", sa.String(32), nullable=True))
        batch.add_column(sa.Column("destinations", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("destination_index", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("invitation_deadline", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("bridge_with", sa.String(64), nullable=True))
        batch.add_column(sa.Column("muted", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("pending", sa.JSON(), nullable=True))
        batch.create_index("ix_call_legs_invitation_id", ["invitation_id"])
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("participants_sequence", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("sip_trunks") as batch:
        batch.add_column(sa.Column("refer", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        batch.drop_column("refer")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("participants_sequence")
    with op.batch_alter_table("call_legs") as batch:
        batch.drop_index("ix_call_legs_invitation_id")
        for column in (
            "pending",
            "muted",
            "bridge_with",
            "invitation_deadline",
            "destination_index",
            "destinations",
            "source_number",
            "callback_subscription_id",
            "operation_context",
            "invitation_id",
            "state",
            "role",
        ):
            batch.drop_column(column)
