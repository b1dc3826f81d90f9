"""Sending claimed deliveries to their endpoints: one signed HTTP attempt per batch (one event,
or an Event Grid batch of a batching subscription), decided by :mod:`gateway.events.lifecycle`
and recorded by :mod:`gateway.events.deliveries`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from gateway.core.db import utcnow
from gateway.events import builder, deliveries, lifecycle, signing
from gateway.events.backoff import Outcome, parse_retry_after
from gateway.events.deliveries import BatchWork, Finished
from gateway.events.http import WebhookError
from gateway.events.lifecycle import AttemptResult
from gateway.events.metrics import (
    ATTEMPT_LATENCY,
    ATTEMPTS,
    DEAD_LETTERS,
    DELIVERIES,
    DELIVERY_LAG,
    attempt_label,
)
from gateway.events.models import SubscriptionKind
from gateway.events.repository import ClaimedRow
from gateway.events.runtime import Runtime

log = structlog.get_logger("trunkline.events")


@dataclass(frozen=True)
class ClaimedWork:
    """Deliveries the dispatcher claimed as it fanned them out, and when the claim ends
    (``time.monotonic()``)."""

    rows: list[ClaimedRow]
    claim_ends: float

    @property
    def delivery_ids(self) -> list[str]:
        return [row.delivery_id for row in self.rows]


def deliver(rt: Runtime, delivery_ids: Sequence[str]) -> int:
    """One attempt of each of ``delivery_ids`` (normally one subscription's), in order, in the
    batches :func:`gateway.events.deliveries.claim` forms.

    Claims them in one transaction and records the results in one more; the HTTP requests go
    one after another over a kept-alive connection. A request is started only while the claim
    leaves it its full timeout; the rest are released to the scheduler (a released batch keeps
    its batch id and is sent whole later). Returns how many deliveries were attempted.
    """
    now = utcnow()
    with rt.database.session() as session:
        batches = deliveries.claim(session, delivery_ids, now, rt.claim_for, rt.topic_of)
    return _send(rt, batches, time.monotonic() + rt.claim_for.total_seconds())


def deliver_claimed(rt: Runtime, claimed: ClaimedWork) -> int:
    """One attempt of deliveries the dispatcher claimed as it fanned them out (no claim here)."""
    batches = deliveries.claimed_batches(claimed.rows, utcnow(), rt.topic_of)
    # Claimed before it waited for this thread: even its first request needs the time left.
    return _send(rt, batches, claimed.claim_ends, first_checked=True)


def _send(
    rt: Runtime, batches: Sequence[BatchWork], claim_ends: float, *, first_checked: bool = False
) -> int:
    """Attempt ``batches`` in order while the claim (ending at monotonic ``claim_ends``) leaves
    each its full timeout (the first only if ``first_checked``: a claim just made leaves it);
    record the results and release the rest in one transaction."""
    if not batches:
        return 0
    timeout = rt.settings.webhook_timeout_seconds
    finished: list[Finished] = []
    released: list[str] = []
    for index, batch in enumerate(batches):
        if (index or first_checked) and claim_ends - time.monotonic() < timeout + 0.5:
            released = [d for b in batches[index:] for d in b.delivery_ids]
            break
        finished.append(_attempt(rt, batch))
    with rt.database.session() as session:
        deliveries.record(session, finished)
        deliveries.release(session, released)
    for done in finished:
        _observe(done)
    return sum(len(done.batch.works) for done in finished)


def request_of(rt: Runtime, batch: BatchWork, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt of ``batch`` (signed over the whole body)."""
    first = batch.first
    headers: dict[str, str]
    if first.kind is SubscriptionKind.CALLBACK:
        body, content_type = builder.render_callbacks([w.event for w in batch.works])
        headers = {"authorization": f"Bearer {rt.callback_token(first.resource_id, now)}"}
    else:
        body, content_type = builder.batch_body(
            first.delivery_schema, batch.elements, batching=batch.as_batch
        )
        headers = {
            "aeg-event-type": "Notification",
            "aeg-delivery-count": str(batch.attempt - 1),
            "aeg-subscription-name": first.subscription_id,
        }
    headers |= {
        "content-type": content_type,
        **signing.sign_headers(first.secrets, batch.message_id, int(time.time()), body),
    }
    return body, headers


def _attempt(rt: Runtime, batch: BatchWork) -> Finished:
    started = utcnow()
    expiry = lifecycle.expired(batch, started)
    if expiry is not None:
        return Finished(batch, None, expiry, started, started)
    body, headers = request_of(rt, batch, started)
    try:
        response = rt.client.request("POST", batch.first.endpoint_url, headers, body)
        result = AttemptResult(
            status_code=response.status,
            latency_ms=response.latency_ms,
            response_body=response.body,
            retry_after=(
                parse_retry_after(response.headers.get("retry-after"))
                if response.status in (429, 503)
                else None
            ),
        )
    except WebhookError as exc:
        result = AttemptResult(
            status_code=None, latency_ms=exc.latency_ms, error=str(exc), error_kind=exc.kind
        )
    ended = utcnow()
    return Finished(batch, result, lifecycle.decide(batch, result, ended, rt.backoff), started, ended)


def _observe(done: Finished) -> None:
    batch, result, decision = done.batch, done.result, done.decision
    if result is not None:
        ATTEMPTS.labels(attempt_label(result.status_code, result.error_kind)).inc()
        ATTEMPT_LATENCY.observe(result.latency_ms / 1000)
    DELIVERIES.labels(decision.outcome.value).inc(len(batch.works))
    if decision.outcome is Outcome.DELIVERED:
        for work in batch.works:
            DELIVERY_LAG.observe((done.finished_at - work.event_created_at).total_seconds())
        return
    first = batch.first
    logger = log.bind(
        delivery_id=first.delivery_id,
        event_id=first.event.id,
        batch_id=batch.batch_id,
        events=len(batch.works),
        subscription_id=first.subscription_id,
        resource_id=first.resource_id,
        attempt=batch.attempt,
    )
    if decision.outcome is Outcome.DEAD_LETTER:
        reason = decision.dead_letter_reason.value if decision.dead_letter_reason else None
        DEAD_LETTERS.labels(reason or "unknown").inc(len(batch.works))
        logger.warning(
            "dead-lettered",
            reason=reason,
            status=result.status_code if result else None,
            error=result.error if result else None,
        )
    else:
        logger.info(
            "delivery failed; will retry",
            status=result.status_code if result else None,
            error=result.error if result else None,
            retry_in=round(decision.retry_in or 0, 2),
        )
