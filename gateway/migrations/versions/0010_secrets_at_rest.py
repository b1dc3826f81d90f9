"""secrets at rest: the columns of encrypted secrets hold their longer, sealed form

Access keys, SMPP and SIP passwords and webhook secrets are stored sealed
(``tlsec1:<kid>:<base64>``, gateway/core/secrets.py), longer than the plain values the columns
were sized for: they become TEXT on PostgreSQL. SQLite ignores declared lengths, and altering a
column there rebuilds the table, whose DROP would cascade-delete every row referencing it
(foreign keys are on), so SQLite keeps its declarations (gateway.core.sealed_columns.SealedText
declares VARCHAR there).

This migration changes no value: rows stay as they are, and plain ones keep reading as plain.
Sealing them is ``trunkline secrets encrypt`` (``trunkline up`` does it on start), run once every
process has the new code and the key: a migration cannot know the key every node will use.
Downgrading needs plain values back first (a sealed value does not fit the old VARCHAR).

Revision ID: 0010_secrets_at_rest
Revises: 0009_calls_sip_routing
Create Date: 2026-12-06 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_secrets_at_rest"
down_revision = "0009_calls_sip_routing"
branch_labels = None
depends_on = None

# table, column, plain width, nullable
COLUMNS = (
    ("resources", "primary_key", 64, False),
    ("resources", "secondary_key", 64, False),
    ("smpp_connections", "password", 64, False),
    ("sip_trunks", "password", 128, True),
    ("event_subscriptions", "secret", 128, False),
    ("event_subscriptions", "previous_secret", 128, True),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, width, nullable in COLUMNS:
        op.alter_column(
            table, column, existing_type=sa.String(length=width), type_=sa.Text(), existing_nullable=nullable
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, width, nullable in COLUMNS:
        op.alter_column(
            table, column, existing_type=sa.Text(), type_=sa.String(length=width), existing_nullable=nullable
        )
