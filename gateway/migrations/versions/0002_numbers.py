"""numbers inventory and acquisition

Revision ID: 0002_numbers
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import gateway.core.db

revision = "0002_numbers"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "carriers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carriers")),
        sa.UniqueConstraint("name", name=op.f("uq_carriers_name")),
    )
    op.create_table(
        "inventory_numbers",
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("phone_number_type", sa.String(length=16), nullable=False),
        sa.Column("assignment_type", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=8), nullable=False),
        sa.Column("locality", sa.String(length=128), nullable=False),
        sa.Column("administrative_division", sa.String(length=64), nullable=False),
        sa.Column("calling", sa.String(length=16), nullable=False),
        sa.Column("sms", sa.String(length=16), nullable=False),
        sa.Column("cost_amount", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("carrier_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("free_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.Column("holder_resource_id", sa.String(length=36), nullable=True),
        sa.Column("search_id", sa.String(length=36), nullable=True),
        sa.Column("reservation_id", sa.String(length=36), nullable=True),
        sa.Column("imported_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"],
            ["carriers.id"],
            name=op.f("fk_inventory_numbers_carrier_id_carriers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("phone_number", name=op.f("pk_inventory_numbers")),
    )
    with op.batch_alter_table("inventory_numbers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inventory_numbers_carrier_id"), ["carrier_id"], unique=False)
        batch_op.create_index(
            "ix_inventory_numbers_search_path",
            ["country_code", "phone_number_type", "assignment_type", "area_code", "free_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_inventory_numbers_search_any_area",
            ["country_code", "phone_number_type", "assignment_type", "free_at"],
            unique=False,
        )
        for name, column, where in (
            ("ix_inventory_numbers_not_available", "status", "status <> 'available'"),
            ("ix_inventory_numbers_search_id", "search_id", "search_id IS NOT NULL"),
            ("ix_inventory_numbers_reservation_id", "reservation_id", "reservation_id IS NOT NULL"),
        ):
            batch_op.create_index(
                name, [column], unique=False, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
            )

    op.create_table(
        "number_operations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("operation_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("resource_location", sa.String(length=255), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("last_action_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_number_operations_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_operations")),
    )
    with op.batch_alter_table("number_operations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_number_operations_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "number_reservations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_number_reservations_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_reservations")),
    )
    with op.batch_alter_table("number_reservations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_number_reservations_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "number_searches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("phone_number_type", sa.String(length=16), nullable=False),
        sa.Column("assignment_type", sa.String(length=16), nullable=False),
        sa.Column("calling", sa.String(length=16), nullable=False),
        sa.Column("sms", sa.String(length=16), nullable=False),
        sa.Column("area_code", sa.String(length=8), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("phone_numbers", sa.JSON(), nullable=False),
        sa.Column("cost_amount", sa.Numeric(precision=12, scale=4), nullable=True),
        sa.Column("currency_code", sa.String(length=3), nullable=True),
        sa.Column("not_resell_required", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=32), nullable=True),
        sa.Column("created_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", gateway.core.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_number_searches_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_number_searches")),
    )
    with op.batch_alter_table("number_searches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_number_searches_resource_id"), ["resource_id"], unique=False)

    op.create_table(
        "number_reservation_items",
        sa.Column("reservation_id", sa.String(length=36), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("calling", sa.String(length=16), nullable=False),
        sa.Column("sms", sa.String(length=16), nullable=False),
        sa.Column("added_at", gateway.core.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["number_reservations.id"],
            name=op.f("fk_number_reservation_items_reservation_id_number_reservations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reservation_id", "phone_number", name=op.f("pk_number_reservation_items")),
    )
    op.create_table(
        "purchased_numbers",
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=False),
        sa.Column("phone_number_type", sa.String(length=16), nullable=False),
        sa.Column("assignment_type", sa.String(length=16), nullable=False),
        sa.Column("calling", sa.String(length=16), nullable=False),
        sa.Column("sms", sa.String(length=16), nullable=False),
        sa.Column("cost_amount", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("purchase_date", gateway.core.db.UTCDateTime(), nullable=False),
        sa.Column("operation_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["phone_number"],
            ["inventory_numbers.phone_number"],
            name=op.f("fk_purchased_numbers_phone_number_inventory_numbers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_purchased_numbers_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("phone_number", name=op.f("pk_purchased_numbers")),
    )
    with op.batch_alter_table("purchased_numbers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_purchased_numbers_resource_date", ["resource_id", "purchase_date"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_purchased_numbers_resource_id"), ["resource_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("purchased_numbers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purchased_numbers_resource_id"))
        batch_op.drop_index("ix_purchased_numbers_resource_date")

    op.drop_table("purchased_numbers")
    op.drop_table("number_reservation_items")
    with op.batch_alter_table("number_searches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_number_searches_resource_id"))

    op.drop_table("number_searches")
    with op.batch_alter_table("number_reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_number_reservations_resource_id"))

    op.drop_table("number_reservations")
    with op.batch_alter_table("number_operations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_number_operations_resource_id"))

    op.drop_table("number_operations")
    with op.batch_alter_table("inventory_numbers", schema=None) as batch_op:
        batch_op.drop_index("ix_inventory_numbers_not_available")
        batch_op.drop_index("ix_inventory_numbers_search_any_area")
        batch_op.drop_index("ix_inventory_numbers_search_path")
        batch_op.drop_index("ix_inventory_numbers_search_id")
        batch_op.drop_index("ix_inventory_numbers_reservation_id")
        batch_op.drop_index(batch_op.f("ix_inventory_numbers_carrier_id"))

    op.drop_table("inventory_numbers")
    op.drop_table("carriers")
