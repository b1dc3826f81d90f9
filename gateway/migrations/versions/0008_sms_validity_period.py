"""sms: sms_messages.validity_period_seconds

Sms 2021-03-07's ``smsSendOptions.validityPeriodSeconds``, kept with the message so that the SMPP
process can send it as the submit_sm's relative validity_period (a resubmission after a crash
or a failover sends the same).

Revision ID: 0008_sms_validity_period
Revises: 0007_sms_drop_resource_created
Create Date: 2026-11-29 11:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_sms_validity_period"
down_revision = "0007_sms_drop_resource_created"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_messages") as batch_op:
        batch_op.add_column(sa.Column("validity_period_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sms_messages") as batch_op:
        batch_op.drop_column("validity_period_seconds")
