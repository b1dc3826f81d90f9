"""Tables of the numbers domain: carriers, inventory, purchased numbers, searches, reservations and
the long-running operations of the Phone Numbers API.

Availability is one indexed column, ``free_at``: a number can be handed out when
``free_at <= now``. An imported number gets ``free_at`` = import time; a hold (search or
reservation) or a release quarantine sets it to the moment the hold or quarantine ends; a purchased
number has ``free_at`` NULL. Expiry is therefore lazy: nothing has to run when a hold lapses, the
number simply matches the availability predicate again (see ``repository.filters.available_predicate``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base, UTCDateTime, new_uuid, utcnow


class Carrier(Base):
    """A carrier the operator buys numbers (and SIP/SMPP connectivity) from."""

    __tablename__ = "carriers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # sip | smpp | both
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class InventoryNumber(Base):
    """One number of the operator's inventory, whatever its state."""

    __tablename__ = "inventory_numbers"

    phone_number: Mapped[str] = mapped_column(String(16), primary_key=True)  # E.164
    country_code: Mapped[str] = mapped_column(String(2))
    phone_number_type: Mapped[str] = mapped_column(String(16))  # geographic | tollFree | mobile
    assignment_type: Mapped[str] = mapped_column(String(16))  # person | application
    area_code: Mapped[str] = mapped_column(String(8))
    locality: Mapped[str] = mapped_column(String(128), default="")
    administrative_division: Mapped[str] = mapped_column(String(64), default="")
    calling: Mapped[str] = mapped_column(String(16))  # what the carrier supports
    sms: Mapped[str] = mapped_column(String(16))
    cost_amount: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    currency_code: Mapped[str] = mapped_column(String(3))
    carrier_id: Mapped[str] = mapped_column(ForeignKey("carriers.id", ondelete="RESTRICT"), index=True)
    # available | reserved (held by a search or reservation) | purchased | quarantined
    status: Mapped[str] = mapped_column(String(12), default="available")
    free_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The resource holding or owning it (no FK: a deleted resource's hold simply lapses).
    holder_resource_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    search_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reservation_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index(
            "ix_inventory_numbers_search_path",
            "country_code",
            "phone_number_type",
            "assignment_type",
            "area_code",
            "free_at",
        ),
        # Searches without an area code (toll-free, "any area code") range-scan this one.
        Index(
            "ix_inventory_numbers_search_any_area",
            "country_code",
            "phone_number_type",
            "assignment_type",
            "free_at",
        ),
        # Partial indexes: most of a large inventory is available and not held, so these stay
        # small and cost an import of a million rows nothing.
        Index(
            "ix_inventory_numbers_not_available",
            "status",
            postgresql_where=text("status <> 'available'"),
            sqlite_where=text("status <> 'available'"),
        ),
        Index(
            "ix_inventory_numbers_search_id",
            "search_id",
            postgresql_where=text("search_id IS NOT NULL"),
            sqlite_where=text("search_id IS NOT NULL"),
        ),
        Index(
            "ix_inventory_numbers_reservation_id",
            "reservation_id",
            postgresql_where=text("reservation_id IS NOT NULL"),
            sqlite_where=text("reservation_id IS NOT NULL"),
        ),
    )


class PurchasedNumber(Base):
    """A number owned by a resource. Inbound SMS and calls route by it; senders are checked by it."""

    __tablename__ = "purchased_numbers"

    # The primary key makes "purchased twice" impossible at the database level.
    phone_number: Mapped[str] = mapped_column(
        ForeignKey("inventory_numbers.phone_number", ondelete="RESTRICT"), primary_key=True
    )
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    country_code: Mapped[str] = mapped_column(String(2))
    phone_number_type: Mapped[str] = mapped_column(String(16))
    assignment_type: Mapped[str] = mapped_column(String(16))
    calling: Mapped[str] = mapped_column(String(16))
    sms: Mapped[str] = mapped_column(String(16))
    cost_amount: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    currency_code: Mapped[str] = mapped_column(String(3))
    purchase_date: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    operation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_purchased_numbers_resource_date", "resource_id", "purchase_date"),)


class NumberSearch(Base):
    """A tenant's search: its request, and once run, the numbers it holds until ``expires_at``."""

    __tablename__ = "number_searches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    country_code: Mapped[str] = mapped_column(String(2))
    phone_number_type: Mapped[str] = mapped_column(String(16))
    assignment_type: Mapped[str] = mapped_column(String(16))
    calling: Mapped[str] = mapped_column(String(16))
    sms: Mapped[str] = mapped_column(String(16))
    area_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|held|failed|purchased
    phone_numbers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cost_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 4), nullable=True)
    currency_code: Mapped[str | None] = mapped_column(String(3), nullable=True)
    not_resell_required: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Reservation(Base):
    """A browse-and-reserve reservation, identified by the client's own UUID."""

    __tablename__ = "number_reservations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="active")  # active|submitted|completed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReservationNumber(Base):
    """A number added to a reservation (the hold itself lives on the inventory row)."""

    __tablename__ = "number_reservation_items"

    reservation_id: Mapped[str] = mapped_column(
        ForeignKey("number_reservations.id", ondelete="CASCADE"), primary_key=True
    )
    phone_number: Mapped[str] = mapped_column(String(16), primary_key=True)
    calling: Mapped[str] = mapped_column(String(16))  # capabilities the purchase will give it
    sms: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NumberOperation(Base):
    """A long-running operation of the Phone Numbers API, scoped by resource."""

    __tablename__ = "number_operations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # e.g. search_<uuid>
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    operation_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(12), default="notStarted")
    target: Mapped[str] = mapped_column(String(64))  # search id, reservation id or phone number
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resource_location: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_action_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
