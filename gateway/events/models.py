from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base, UTCDateTime, new_uuid, utcnow
from gateway.core.sealed_columns import SealedText


class SubscriptionStatus(StrEnum):
    """A subscription's ``status``: it receives events only once the handshake made it active."""

    PENDING_VALIDATION = "pendingValidation"
    ACTIVE = "active"
    VALIDATION_FAILED = "validationFailed"


class SubscriptionKind(StrEnum):
    """A tenant's webhook (Event Grid style, listed and managed by the tenant) or a call's
    ``callbackUri`` (made by the calls domain, active at once, reached only by events addressed
    to it; one per resource and URL)."""

    WEBHOOK = "webhook"
    CALLBACK = "callback"


class EventSubscription(Base):
    """A resource's webhook: which events go where, in which schema, signed with which secret."""

    __tablename__ = "event_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    endpoint_url: Mapped[str] = mapped_column(String(2048))
    kind: Mapped[str] = mapped_column(
        String(16), default=SubscriptionKind.WEBHOOK.value, server_default=SubscriptionKind.WEBHOOK.value
    )
    event_types: Mapped[list[str]] = mapped_column(JSON)
    subject_begins_with: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    subject_ends_with: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    delivery_schema: Mapped[str] = mapped_column(String(32))
    max_delivery_attempts: Mapped[int] = mapped_column(Integer)
    event_ttl_minutes: Mapped[int] = mapped_column(Integer)
    # Event Grid's batching: at most this many events per HTTP delivery, and no more bytes than
    # this many KiB unless one event alone is larger (it then goes alone).
    max_events_per_batch: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    preferred_batch_size_kb: Mapped[int] = mapped_column(Integer, default=64, server_default="64")
    # Encrypted at rest (gateway/core/sealed_columns.py).
    secret: Mapped[str] = mapped_column(SealedText("event_subscriptions.secret"))
    previous_secret: Mapped[str | None] = mapped_column(
        SealedText("event_subscriptions.previous_secret"), nullable=True
    )
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # pendingValidation -> active, or validationFailed (status_detail says why).
    status: Mapped[str] = mapped_column(String(32))
    status_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    validation_code: Mapped[str] = mapped_column(String(64))
    validation_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the scheduler next hands the handshake to a worker (also a lease while one runs it).
    validation_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxEvent(Base):
    """An event written in the producer's transaction; the dispatcher fans it out."""

    __tablename__ = "event_outbox"
    __table_args__ = (Index("ix_event_outbox_pending", "dispatched_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(1024))
    # An event addressed to one subscription (a call's callback) goes there only; None: fan out.
    subscription_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Delivery(Base):
    """One event to one subscription. Dead-lettered deliveries are the dead-letter store."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index("ix_event_deliveries_due", "status", "next_attempt_at"),
        # Only deliveries sent in a batch of a batching subscription have a batch id; the claim
        # takes a batch whole by it.
        Index(
            "ix_event_deliveries_batch",
            "batch_id",
            postgresql_where=text("batch_id IS NOT NULL"),
            sqlite_where=text("batch_id IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    event_id: Mapped[str] = mapped_column(ForeignKey("event_outbox.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("event_subscriptions.id", ondelete="CASCADE"), index=True
    )
    resource_id: Mapped[str] = mapped_column(String(36), index=True)
    # pending | delivered | deadLettered
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The scheduler does not re-enqueue before enqueued_until (a task is believed to be in
    # flight); no worker attempts while another holds claimed_until.
    enqueued_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dead_letter_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_response: Mapped[str | None] = mapped_column(Text, nullable=True)
    replays: Mapped[int] = mapped_column(Integer, default=0)
    # The HTTP batch this delivery travels in (its webhook-id when the batch has several events),
    # fixed when a batching subscription first claims it, so a retry re-sends the same batch.
    batch_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class DeliveryAttempt(Base):
    """One HTTP attempt of a delivery (or of a validation handshake: delivery_id is then null)."""

    __tablename__ = "event_delivery_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    delivery_id: Mapped[str | None] = mapped_column(
        ForeignKey("event_deliveries.id", ondelete="CASCADE"), index=True, nullable=True
    )
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("event_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
