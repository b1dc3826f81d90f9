"""Imports every domain's models so that Base.metadata (and Alembic) sees all tables."""

from gateway.events.models import Delivery, DeliveryAttempt, EventSubscription, OutboxEvent
from gateway.identity.models import Identity
from gateway.resources.models import Resource

__all__ = [
    "Delivery",
    "DeliveryAttempt",
    "EventSubscription",
    "Identity",
    "OutboxEvent",
    "Resource",
]
