"""Imports every domain's models so that Base.metadata (and Alembic) sees all tables."""

from gateway.identity.models import Identity
from gateway.numbers.models import (
    Carrier,
    InventoryNumber,
    NumberOperation,
    NumberSearch,
    PurchasedNumber,
    Reservation,
    ReservationNumber,
)
from gateway.resources.models import Resource

__all__ = [
    "Carrier",
    "Identity",
    "InventoryNumber",
    "NumberOperation",
    "NumberSearch",
    "PurchasedNumber",
    "Reservation",
    "ReservationNumber",
    "Resource",
]
