"""Partial indexes for live calls and placing participant legs

``calls`` and ``call_legs`` keep every call ever made; the sweeper (every second) and the SIP
controller's timers (several times a second) look for the few live ones. ``ix_calls_process_state``
held every call and could not serve ``state <> 'ended'``, so those statements read the whole
table; ``call_legs`` had no index for the participant invitation timer at all.

Revision ID: 0018_calls_live_indexes
Revises: 0017_sip_trunk_dtmf
Create Date: 2026-12-07 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_calls_live_indexes"
down_revision = "0017_sip_trunk_dtmf"
branch_labels = None
depends_on = None

LIVE_CALL = "state <> 'ended'"
PLACING_LEG = "state = 'placing'"


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_process_state")
        batch.create_index(
            "ix_calls_live",
            ["sip_process", "state"],
            postgresql_where=sa.text(LIVE_CALL),
            sqlite_where=sa.text(LIVE_CALL),
        )
    with op.batch_alter_table("call_legs") as batch:
        batch.create_index(
            "ix_call_legs_placing",
            ["sip_process", "invitation_deadline"],
            postgresql_where=sa.text(PLACING_LEG),
            sqlite_where=sa.text(PLACING_LEG),
        )


def downgrade() -> None:
    with op.batch_alter_table("call_legs") as batch:
        batch.drop_index("ix_call_legs_placing")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_live")
        batch.create_index("ix_calls_process_state", ["sip_process", "state"])
