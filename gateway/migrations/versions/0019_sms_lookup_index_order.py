"""The SMS lookups' indexes lead with the column they look up

The receipt lookup (``connection_id = :c AND smsc_message_id = ANY(:ids)``) and POST /sms's
repeatability lookup (``resource_id = ANY(:r) AND repeatability_request_id = ANY(:ids)``) had
indexes leading with the column every row shares (one SMPP connection, one resource). Without
statistics (a new database, or a table grown since autovacuum's last visit) the planner took the
default selectivity for that column, used the index on it alone and filtered the rest: every
segment of the connection, every message of the resource, read per lookup (11 and 25 ms at
20,000 rows, growing with the table). Led by the looked-up column, the index cannot be used
without it. The unique constraint keeps its meaning; deleting a resource now finds its messages
by a scan, once, beside deleting them all.

Revision ID: 0019_sms_lookup_index_order
Revises: 0018_calls_live_indexes
Create Date: 2026-12-07 14:15:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0019_sms_lookup_index_order"
down_revision = "0018_calls_live_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sms_messages") as batch:
        batch.drop_constraint("uq_sms_messages_resource_id", type_="unique")
        batch.create_unique_constraint(
            "uq_sms_messages_repeatability_request_id", ["repeatability_request_id", "resource_id"]
        )
    with op.batch_alter_table("sms_segments") as batch:
        batch.drop_index("ix_sms_segments_smsc_id")
        batch.create_index("ix_sms_segments_smsc_id", ["smsc_message_id", "connection_id"])


def downgrade() -> None:
    with op.batch_alter_table("sms_segments") as batch:
        batch.drop_index("ix_sms_segments_smsc_id")
        batch.create_index("ix_sms_segments_smsc_id", ["connection_id", "smsc_message_id"])
    with op.batch_alter_table("sms_messages") as batch:
        batch.drop_constraint("uq_sms_messages_repeatability_request_id", type_="unique")
        batch.create_unique_constraint(
            "uq_sms_messages_resource_id", ["resource_id", "repeatability_request_id"]
        )
