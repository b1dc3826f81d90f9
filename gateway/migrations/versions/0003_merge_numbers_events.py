"""Join the numbers and events branches of the schema (both start from 0001).

Revision ID: 0003
Revises: 0002_numbers, 0002_events
Create Date: 2026-11-29
"""

from __future__ import annotations

revision = "0003"
down_revision = ("0002_numbers", "0002_events")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
