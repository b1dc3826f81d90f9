"""Imports every domain's models so that Base.metadata (and Alembic) sees all tables."""

from gateway.calls.models import Call, CallLeg, SipRoute, SipTrunk, TenantSipRoute, TenantSipTrunk
from gateway.events.models import Delivery, DeliveryAttempt, EventSubscription, OutboxEvent
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
from gateway.sms.models import (
    SmppConnection,
    SmppRoute,
    SmsInbound,
    SmsInboundPart,
    SmsMessage,
    SmsOptOut,
    SmsPendingReceipt,
    SmsSegment,
    SmsSendCounter,
)

__all__ = [
    "Call",
    "CallLeg",
    "Carrier",
    "Delivery",
    "DeliveryAttempt",
    "EventSubscription",
    "Identity",
    "InventoryNumber",
    "NumberOperation",
    "NumberSearch",
    "OutboxEvent",
    "PurchasedNumber",
    "Reservation",
    "ReservationNumber",
    "Resource",
    "SipRoute",
    "SipTrunk",
    "SmppConnection",
    "SmppRoute",
    "SmsInbound",
    "SmsInboundPart",
    "SmsMessage",
    "SmsOptOut",
    "SmsPendingReceipt",
    "SmsSegment",
    "SmsSendCounter",
    "TenantSipRoute",
    "TenantSipTrunk",
]
