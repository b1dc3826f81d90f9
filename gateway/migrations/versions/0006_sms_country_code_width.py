"""sms: a message's country code holds phonenumbers' "001" of non-geographic numbers (+800, +882)

Revision ID: 0006_sms_country_code_width
Revises: 0005_sms_send_counters
Create Date: 2026-11-29 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_sms_country_code_width"
down_revision = "0005_sms_send_counters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_messages") as batch:
        batch.alter_column("country_code", existing_type=sa.String(length=2), type_=sa.String(length=3))


def downgrade() -> None:
    with op.batch_alter_table("sms_messages") as batch:
        batch.alter_column("country_code", existing_type=sa.String(length=3), type_=sa.String(length=2))
