"""The delivery state machine (pure): a delivery's states and every change of state.

A delivery is created ``pending``; each attempt ends it ``delivered``, keeps it ``pending`` for a
retry, or ends it ``deadLettered``; a replay puts a dead letter back to ``pending``. Every writer
of a delivery's state (fan-out, test events, the recorder of attempts, replay) takes its values
from here, so the rules live in one place and are tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from gateway.events.backoff import Backoff, Outcome, classify_status

# The part of the endpoint's answer kept with the delivery.
MAX_STORED_RESPONSE = 4096


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD_LETTERED = "deadLettered"


class FailureKind(StrEnum):
    """Why an attempt got no HTTP answer (raised by :mod:`gateway.events.http`)."""

    DESTINATION_REFUSED = "DestinationRefused"
    CONNECTION = "ConnectionError"
    TIMEOUT = "Timeout"
    PROTOCOL = "ProtocolError"


class DeadLetterReason(StrEnum):
    DESTINATION_REFUSED = "DestinationRefused"
    NON_RETRYABLE_STATUS = "NonRetryableStatusCode"
    MAX_ATTEMPTS = "MaxDeliveryAttemptsExceeded"
    TIME_TO_LIVE = "TimeToLiveExceeded"


STATUS_AFTER = {
    Outcome.DELIVERED: DeliveryStatus.DELIVERED,
    Outcome.DEAD_LETTER: DeliveryStatus.DEAD_LETTERED,
    Outcome.RETRY: DeliveryStatus.PENDING,
}


class ClaimedDelivery(Protocol):
    """What the rules need of a delivery claimed for one attempt."""

    @property
    def attempt(self) -> int: ...  # this attempt's number, from 1

    @property
    def max_attempts(self) -> int: ...

    @property
    def expires_at(self) -> datetime: ...

    @property
    def next_attempt_at(self) -> datetime: ...


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: int
    error: str | None = None
    error_kind: FailureKind | None = None
    response_body: bytes = b""
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After header


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    retry_in: float | None = None
    dead_letter_reason: DeadLetterReason | None = None


def expired(work: ClaimedDelivery, now: datetime) -> Decision | None:
    """Before an attempt: dead-letter a delivery whose time to live has passed (None: go on)."""
    if now >= work.expires_at:
        return Decision(Outcome.DEAD_LETTER, dead_letter_reason=DeadLetterReason.TIME_TO_LIVE)
    return None


def decide(work: ClaimedDelivery, result: AttemptResult, now: datetime, backoff: Backoff) -> Decision:
    """What follows one attempt."""
    if result.error_kind == FailureKind.DESTINATION_REFUSED:
        return Decision(Outcome.DEAD_LETTER, dead_letter_reason=DeadLetterReason.DESTINATION_REFUSED)
    outcome = classify_status(result.status_code)
    if outcome is Outcome.DELIVERED:
        return Decision(outcome)
    if outcome is Outcome.DEAD_LETTER:
        return Decision(outcome, dead_letter_reason=DeadLetterReason.NON_RETRYABLE_STATUS)
    if work.attempt >= work.max_attempts:
        return Decision(Outcome.DEAD_LETTER, dead_letter_reason=DeadLetterReason.MAX_ATTEMPTS)
    delay = backoff.delay(work.attempt)
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, backoff.max_seconds))
    if now + timedelta(seconds=delay) >= work.expires_at:
        return Decision(Outcome.DEAD_LETTER, dead_letter_reason=DeadLetterReason.TIME_TO_LIVE)
    return Decision(Outcome.RETRY, retry_in=delay)


@dataclass(frozen=True, slots=True)
class DeliveryChange:
    """A delivery row's new values after an attempt (its claim and enqueue leases are cleared)."""

    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    finished_at: datetime | None
    dead_letter_reason: DeadLetterReason | None
    last_status_code: int | None
    last_error: str | None
    last_response: str | None


def after_attempt(
    work: ClaimedDelivery, result: AttemptResult | None, decision: Decision, finished_at: datetime
) -> DeliveryChange:
    """The row change of one decided attempt (``result`` None: expired before any attempt)."""
    retry = decision.outcome is Outcome.RETRY
    body = result.response_body[:MAX_STORED_RESPONSE].decode("utf-8", "replace") if result else ""
    return DeliveryChange(
        status=STATUS_AFTER[decision.outcome],
        attempts=work.attempt if result is not None else work.attempt - 1,
        next_attempt_at=(
            finished_at + timedelta(seconds=decision.retry_in or 0) if retry else work.next_attempt_at
        ),
        finished_at=None if retry else finished_at,
        dead_letter_reason=decision.dead_letter_reason,
        last_status_code=result.status_code if result else None,
        last_error=result.error if result else None,
        last_response=body or None,
    )


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """The state a delivery starts in (fan-out of an outbox row, a test event)."""

    status: DeliveryStatus
    attempts: int
    replays: int
    next_attempt_at: datetime
    expires_at: datetime


def created(now: datetime, event_created_at: datetime, ttl_minutes: int) -> NewDelivery:
    """A new delivery: due now, living ``ttl_minutes`` from the event's commit."""
    return NewDelivery(
        status=DeliveryStatus.PENDING,
        attempts=0,
        replays=0,
        next_attempt_at=now,
        expires_at=event_created_at + timedelta(minutes=ttl_minutes),
    )


@dataclass(frozen=True, slots=True)
class Replayed:
    """A dead letter put back to pending: a fresh attempt budget and time to live."""

    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime
    finished_at: None = None
    dead_letter_reason: None = None


def replayed(now: datetime, ttl_minutes: int) -> Replayed:
    return Replayed(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        expires_at=now + timedelta(minutes=ttl_minutes),
    )
