"""sms: drop ix_sms_messages_resource_created, which no query needs

The repeatability lookup (resource_id = ? AND repeatability_request_id IN (...)) is answered by
the unique index on those two columns, but on a table whose statistics are stale (a new or
quickly growing one) PostgreSQL's planner chose this index, which also starts with resource_id,
and filtered every message of the resource: a lookup per request that grew with the resource's
history (psycopg's prepared statements then keep that plan). No query filters on resource_id and
created_at together since the quotas moved to sms_send_counters (0005), and every insert paid
for its upkeep.

Revision ID: 0007_sms_drop_resource_created
Revises: 0006_sms_country_code_width
Create Date: 2026-11-29 08:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007_sms_drop_resource_created"
down_revision = "0006_sms_country_code_width"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sms_messages_resource_created", table_name="sms_messages")


def downgrade() -> None:
    op.create_index("ix_sms_messages_resource_created", "sms_messages", ["resource_id", "created_at"])
