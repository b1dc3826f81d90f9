"""Wire shapes of the event-subscription API (admin and tenant), camelCase like ACS."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from gateway.core.text import InputModel
from gateway.events.builder import DeliverySchema
from gateway.events.models import Delivery, DeliveryAttempt, EventSubscription, OutboxEvent
from gateway.events.subscriptions import (
    MAX_EVENTS_PER_BATCH,
    MAX_PREFERRED_BATCH_KB,
    SubscriptionSpec,
    SubscriptionUpdate,
)


class CamelModel(InputModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SubscriptionCreate(CamelModel):
    endpoint_url: str = Field(min_length=1, max_length=2048)
    included_event_types: list[str] = Field(min_length=1, max_length=16)
    event_delivery_schema: DeliverySchema = DeliverySchema.EVENT_GRID
    subject_begins_with: str | None = Field(default=None, max_length=1024)
    subject_ends_with: str | None = Field(default=None, max_length=1024)
    max_delivery_attempts: int | None = Field(default=None, ge=1, le=30)
    event_time_to_live_in_minutes: int | None = Field(default=None, ge=1, le=1440)
    max_events_per_batch: int | None = Field(default=None, ge=1, le=MAX_EVENTS_PER_BATCH)
    preferred_batch_size_in_kilobytes: int | None = Field(default=None, ge=1, le=MAX_PREFERRED_BATCH_KB)

    def spec(self) -> SubscriptionSpec:
        return SubscriptionSpec(
            endpoint_url=self.endpoint_url,
            event_types=self.included_event_types,
            delivery_schema=self.event_delivery_schema,
            subject_begins_with=self.subject_begins_with,
            subject_ends_with=self.subject_ends_with,
            max_delivery_attempts=self.max_delivery_attempts,
            event_ttl_minutes=self.event_time_to_live_in_minutes,
            max_events_per_batch=self.max_events_per_batch,
            preferred_batch_size_kb=self.preferred_batch_size_in_kilobytes,
        )


class SubscriptionPatch(CamelModel):
    endpoint_url: str | None = Field(default=None, min_length=1, max_length=2048)
    included_event_types: list[str] | None = Field(default=None, min_length=1, max_length=16)
    event_delivery_schema: DeliverySchema | None = None
    subject_begins_with: str | None = Field(default=None, max_length=1024)
    subject_ends_with: str | None = Field(default=None, max_length=1024)
    max_delivery_attempts: int | None = Field(default=None, ge=1, le=30)
    event_time_to_live_in_minutes: int | None = Field(default=None, ge=1, le=1440)
    max_events_per_batch: int | None = Field(default=None, ge=1, le=MAX_EVENTS_PER_BATCH)
    preferred_batch_size_in_kilobytes: int | None = Field(default=None, ge=1, le=MAX_PREFERRED_BATCH_KB)

    def change(self) -> SubscriptionUpdate:
        return SubscriptionUpdate(
            endpoint_url=self.endpoint_url,
            event_types=self.included_event_types,
            delivery_schema=self.event_delivery_schema,
            subject_begins_with=self.subject_begins_with,
            subject_ends_with=self.subject_ends_with,
            max_delivery_attempts=self.max_delivery_attempts,
            event_ttl_minutes=self.event_time_to_live_in_minutes,
            max_events_per_batch=self.max_events_per_batch,
            preferred_batch_size_kb=self.preferred_batch_size_in_kilobytes,
        )


class AdminSubscriptionCreate(SubscriptionCreate):
    resource: str = Field(description="name or id of the communication resource")


class Subscription(CamelModel):
    id: str
    resource_id: str
    endpoint_url: str
    included_event_types: list[str]
    event_delivery_schema: DeliverySchema
    subject_begins_with: str | None
    subject_ends_with: str | None
    max_delivery_attempts: int
    event_time_to_live_in_minutes: int
    max_events_per_batch: int
    preferred_batch_size_in_kilobytes: int
    secret: str
    previous_secret_expires_at: datetime | None
    status: str
    status_detail: str | None
    validated_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, s: EventSubscription) -> Subscription:
        return cls(
            id=s.id,
            resource_id=s.resource_id,
            endpoint_url=s.endpoint_url,
            included_event_types=list(s.event_types),
            event_delivery_schema=DeliverySchema(s.delivery_schema),
            subject_begins_with=s.subject_begins_with,
            subject_ends_with=s.subject_ends_with,
            max_delivery_attempts=s.max_delivery_attempts,
            event_time_to_live_in_minutes=s.event_ttl_minutes,
            max_events_per_batch=s.max_events_per_batch,
            preferred_batch_size_in_kilobytes=s.preferred_batch_size_kb,
            secret=s.secret,
            previous_secret_expires_at=s.previous_secret_expires_at,
            status=s.status,
            status_detail=s.status_detail,
            validated_at=s.validated_at,
            created_at=s.created_at,
        )


class SubscriptionList(CamelModel):
    value: list[Subscription]


class TestEventRequest(CamelModel):
    event_type: str | None = None


class TestEventAccepted(CamelModel):
    event_id: str


class ReplayRequest(CamelModel):
    event_ids: list[str] | None = Field(default=None, description="omit to replay every dead letter")


class ReplayResult(CamelModel):
    replayed_event_ids: list[str]


class DeliveryView(CamelModel):
    id: str
    event_id: str
    event_type: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    expires_at: datetime
    created_at: datetime
    finished_at: datetime | None
    dead_letter_reason: str | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None
    replays: int

    @classmethod
    def of(cls, d: Delivery, e: OutboxEvent) -> DeliveryView:
        return cls(
            id=d.id,
            event_id=d.event_id,
            event_type=e.event_type,
            subject=e.subject,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            expires_at=d.expires_at,
            created_at=d.created_at,
            finished_at=d.finished_at,
            dead_letter_reason=d.dead_letter_reason,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            last_response=d.last_response,
            replays=d.replays,
        )


class DeliveryList(CamelModel):
    value: list[DeliveryView]


class AttemptView(CamelModel):
    id: str
    delivery_id: str | None
    event_id: str | None
    number: int
    time: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: str

    @classmethod
    def of(cls, a: DeliveryAttempt) -> AttemptView:
        return cls(
            id=a.id,
            delivery_id=a.delivery_id,
            event_id=a.event_id,
            number=a.number,
            time=a.started_at,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            error=a.error,
            outcome=a.outcome,
        )


class AttemptList(CamelModel):
    value: list[AttemptView]
