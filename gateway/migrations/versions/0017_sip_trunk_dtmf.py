"""sip_trunks.dtmf: how the trunk's carrier sends DTMF (auto | rfc2833 | info | inband)

``auto`` (every existing trunk): a call listening for digits has its audio tapped for in-band
tones only when the far end's SDP has no telephone-event (sip.dtmf_mode).

Revision ID: 0017_sip_trunk_dtmf
Revises: 0016_sms_batches_event_batches
Create Date: 2026-12-07 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_sip_trunk_dtmf"
down_revision = "0016_sms_batches_event_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        batch.add_column(sa.Column("dtmf", sa.String(7), server_default="auto", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("sip_trunks") as batch:
        batch.drop_column("dtmf")
