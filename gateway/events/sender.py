"""Sending claimed deliveries to their endpoints: one signed HTTP attempt each, decided by
:mod:`gateway.events.lifecycle` and recorded by :mod:`gateway.events.deliveries`."""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog

from gateway.core.db import utcnow
from gateway.events import builder, deliveries, lifecycle, signing
from gateway.events.backoff import Outcome, parse_retry_after
from gateway.events.deliveries import DeliveryWork, Finished
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
from gateway.events.runtime import Runtime

log = structlog.get_logger("trunkline.events")


def deliver(rt: Runtime, delivery_ids: Sequence[str]) -> int:
    """One attempt of each of ``delivery_ids`` (normally one subscription's), in order.

    Claims them in one transaction and records the results in one more; the HTTP requests go
    one after another over a kept-alive connection. A request is started only while the claim
    leaves it its full timeout; the rest are released to the scheduler. Returns how many were
    attempted.
    """
    now = utcnow()
    with rt.database.session() as session:
        works = deliveries.claim(session, delivery_ids, now, rt.claim_for, rt.topic_of)
    if not works:
        return 0
    claim_ends = time.monotonic() + rt.claim_for.total_seconds()
    timeout = rt.settings.webhook_timeout_seconds
    finished: list[Finished] = []
    released: list[str] = []
    for index, work in enumerate(works):
        if index and claim_ends - time.monotonic() < timeout + 0.5:
            released = [w.delivery_id for w in works[index:]]
            break
        finished.append(_attempt(rt, work))
    with rt.database.session() as session:
        deliveries.record(session, finished)
        deliveries.release(session, released)
    for done in finished:
        _observe(done)
    return len(finished)


def _attempt(rt: Runtime, work: DeliveryWork) -> Finished:
    started = utcnow()
    expiry = lifecycle.expired(work, started)
    if expiry is not None:
        return Finished(work, None, expiry, started, started)
    headers: dict[str, str]
    if work.kind is SubscriptionKind.CALLBACK:
        body, content_type = builder.render_callbacks([work.event])
        headers = {"authorization": f"Bearer {rt.callback_token(work.resource_id, started)}"}
    else:
        body, content_type = builder.render(work.delivery_schema, [work.event], work.topic)
        headers = {
            "aeg-event-type": "Notification",
            "aeg-delivery-count": str(work.attempt - 1),
            "aeg-subscription-name": work.subscription_id,
        }
    headers |= {
        "content-type": content_type,
        **signing.sign_headers(work.secrets, work.event.id, int(time.time()), body),
    }
    try:
        response = rt.client.request("POST", work.endpoint_url, headers, body)
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
    return Finished(work, result, lifecycle.decide(work, result, ended, rt.backoff), started, ended)


def _observe(done: Finished) -> None:
    work, result, decision = done.work, done.result, done.decision
    if result is not None:
        ATTEMPTS.labels(attempt_label(result.status_code, result.error_kind)).inc()
        ATTEMPT_LATENCY.observe(result.latency_ms / 1000)
    DELIVERIES.labels(decision.outcome.value).inc()
    if decision.outcome is Outcome.DELIVERED:
        DELIVERY_LAG.observe((done.finished_at - work.event_created_at).total_seconds())
        return
    logger = log.bind(
        delivery_id=work.delivery_id,
        event_id=work.event.id,
        subscription_id=work.subscription_id,
        resource_id=work.resource_id,
        attempt=work.attempt,
    )
    if decision.outcome is Outcome.DEAD_LETTER:
        reason = decision.dead_letter_reason.value if decision.dead_letter_reason else None
        DEAD_LETTERS.labels(reason or "unknown").inc()
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
