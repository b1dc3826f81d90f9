"""The delivery state machine (gateway.events.lifecycle): decisions after an attempt and the row
change each one writes, property-tested without a database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.events import lifecycle
from gateway.events.backoff import NO_RETRY_STATUS, Backoff, Outcome
from gateway.events.lifecycle import (
    AttemptResult,
    DeadLetterReason,
    Decision,
    DeliveryStatus,
    FailureKind,
    decide,
)


def _work(attempt: int, max_attempts: int, expires_in: float) -> Any:
    from gateway.events.builder import DeliverySchema, Event
    from gateway.events.deliveries import DeliveryWork
    from gateway.events.models import SubscriptionKind

    now = datetime(2026, 1, 1, tzinfo=UTC)
    return (
        DeliveryWork(
            delivery_id="d",
            subscription_id="s",
            resource_id="r",
            event=Event("e", "t", "s", {}, now),
            event_created_at=now,
            endpoint_url="https://x/",
            delivery_schema=DeliverySchema.EVENT_GRID,
            topic="/t",
            secrets=[],
            kind=SubscriptionKind.WEBHOOK,
            attempt=attempt,
            max_attempts=max_attempts,
            expires_at=now + timedelta(seconds=expires_in),
            next_attempt_at=now,
        ),
        now,
    )


@settings(deadline=None)
@given(
    status=st.none() | st.integers(100, 599),
    max_attempts=st.integers(1, 30),
    attempt_offset=st.integers(0, 29),
    expires_in=st.floats(0, 86400),
    retry_after=st.none() | st.floats(0, 100000),
    seed=st.integers(),
)
def test_decisions_respect_the_budget(
    status: int | None,
    max_attempts: int,
    attempt_offset: int,
    expires_in: float,
    retry_after: float | None,
    seed: int,
) -> None:
    attempt = min(max_attempts, 1 + attempt_offset)
    work, now = _work(attempt, max_attempts, expires_in)
    backoff = Backoff(10, 3600)
    random.seed(seed)
    result = AttemptResult(status_code=status, latency_ms=5, retry_after=retry_after)
    decision = decide(work, result, now, backoff)
    if status is not None and 200 <= status < 300:
        assert decision.outcome is Outcome.DELIVERED
    elif status in NO_RETRY_STATUS:
        assert decision.outcome is Outcome.DEAD_LETTER
        assert decision.dead_letter_reason == "NonRetryableStatusCode"
    elif decision.outcome is Outcome.RETRY:
        assert attempt < max_attempts
        assert decision.retry_in is not None
        assert now + timedelta(seconds=decision.retry_in) < work.expires_at
        assert decision.retry_in <= backoff.max_seconds
        if retry_after is not None:
            assert decision.retry_in >= min(retry_after, backoff.max_seconds)
    else:
        assert decision.outcome is Outcome.DEAD_LETTER
        assert decision.dead_letter_reason in ("MaxDeliveryAttemptsExceeded", "TimeToLiveExceeded")
        if attempt < max_attempts:
            assert decision.dead_letter_reason == "TimeToLiveExceeded"


def test_a_refused_destination_is_dead_lettered_at_once() -> None:
    work, now = _work(1, 30, 86400)
    result = AttemptResult(None, 0, error="DestinationRefused: x", error_kind=FailureKind.DESTINATION_REFUSED)
    assert decide(work, result, now, Backoff()) == Decision(
        Outcome.DEAD_LETTER, dead_letter_reason=DeadLetterReason.DESTINATION_REFUSED
    )
    timeout = AttemptResult(None, 0, error="Timeout: x", error_kind=FailureKind.TIMEOUT)
    assert decide(work, timeout, now, Backoff()).outcome is Outcome.RETRY


@given(expires_in_ms=st.integers(-86_400_000, 86_400_000))
def test_expiry_before_an_attempt(expires_in_ms: int) -> None:
    work, now = _work(1, 30, expires_in_ms / 1000)
    decision = lifecycle.expired(work, now)
    if expires_in_ms <= 0:
        assert decision == Decision(Outcome.DEAD_LETTER, dead_letter_reason=DeadLetterReason.TIME_TO_LIVE)
        change = lifecycle.after_attempt(work, None, decision, now)
        assert change.status is DeliveryStatus.DEAD_LETTERED
        assert change.attempts == 0  # no attempt was made
        assert (change.finished_at, change.last_status_code, change.last_response) == (now, None, None)
    else:
        assert decision is None


@settings(deadline=None)
@given(
    status=st.none() | st.integers(100, 599),
    attempt=st.integers(1, 30),
    retry_in=st.floats(0, 3600),
    body=st.binary(max_size=5000),
)
def test_every_decision_has_one_row_change(
    status: int | None, attempt: int, retry_in: float, body: bytes
) -> None:
    work, now = _work(attempt, 30, 86400)
    result = AttemptResult(status, 7, error=None if status else "Timeout: x", response_body=body)
    finished = now + timedelta(seconds=1)
    for decision in (
        Decision(Outcome.DELIVERED),
        Decision(Outcome.RETRY, retry_in=retry_in),
        Decision(Outcome.DEAD_LETTER, dead_letter_reason=DeadLetterReason.NON_RETRYABLE_STATUS),
    ):
        change = lifecycle.after_attempt(work, result, decision, finished)
        assert change.status is lifecycle.STATUS_AFTER[decision.outcome]
        assert change.attempts == attempt
        assert change.dead_letter_reason == decision.dead_letter_reason
        assert change.last_status_code == status
        assert change.last_error == result.error
        stored = body[: lifecycle.MAX_STORED_RESPONSE].decode("utf-8", "replace")
        assert change.last_response == (stored or None)
        if decision.outcome is Outcome.RETRY:
            assert change.status is DeliveryStatus.PENDING
            assert change.finished_at is None
            assert change.next_attempt_at == finished + timedelta(seconds=retry_in)
        else:
            assert change.finished_at == finished
            assert change.next_attempt_at == work.next_attempt_at


def test_new_and_replayed_deliveries_start_pending_with_a_full_budget() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    committed = now - timedelta(minutes=5)
    start = lifecycle.created(now, committed, 60)
    assert (start.status, start.attempts, start.replays) == (DeliveryStatus.PENDING, 0, 0)
    assert (start.next_attempt_at, start.expires_at) == (now, committed + timedelta(minutes=60))
    again = lifecycle.replayed(now, 60)
    assert (again.status, again.attempts, again.finished_at, again.dead_letter_reason) == (
        DeliveryStatus.PENDING,
        0,
        None,
        None,
    )
    assert (again.next_attempt_at, again.expires_at) == (now, now + timedelta(minutes=60))


def test_statuses_and_reasons_keep_their_wire_names() -> None:
    """They are stored and shown by the API: renaming one is a breaking change."""
    assert [s.value for s in DeliveryStatus] == ["pending", "delivered", "deadLettered"]
    assert [r.value for r in DeadLetterReason] == [
        "DestinationRefused",
        "NonRetryableStatusCode",
        "MaxDeliveryAttemptsExceeded",
        "TimeToLiveExceeded",
    ]
