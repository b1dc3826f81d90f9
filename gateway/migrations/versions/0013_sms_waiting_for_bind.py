"""sms_messages.waiting_for_bind: a message that found no bound connection for its route

Waiting for a bind is not an attempt: such a message keeps its attempts and is released (due
at once) when a bind comes up, rather than backing off on its own.

Revision ID: 0013_sms_waiting_for_bind
Revises: 0012_smpp_bind_status
Create Date: 2026-12-06 18:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_sms_waiting_for_bind"
down_revision = "0012_smpp_bind_status"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_messages") as batch:
        batch.add_column(
            sa.Column("waiting_for_bind", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sms_messages") as batch:
        batch.drop_column("waiting_for_bind")
