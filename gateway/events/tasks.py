"""Celery tasks (delivery, validation handshake) and the dispatcher loop that feeds them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import quote

import structlog
from celery import Celery

from gateway.core.celery_app import EVENTS_QUEUE
from gateway.core.db import new_uuid, utcnow
from gateway.events import builder, service, signing
from gateway.events.backoff import Outcome, parse_retry_after
from gateway.events.builder import DeliverySchema
from gateway.events.http import WebhookError
from gateway.events.metrics import (
    ATTEMPT_LATENCY,
    ATTEMPTS,
    DEAD_LETTERS,
    DELIVERIES,
    DELIVERY_LAG,
    EVENTS_PUBLISHED,
    VALIDATIONS,
    attempt_label,
)
from gateway.events.runtime import Runtime, runtime

log = structlog.get_logger("trunkline.events")

DELIVER_TASK = "trunkline.events.deliver"
VALIDATE_TASK = "trunkline.events.validate"
CLOUDEVENTS_ORIGIN = "eventgrid.azure.net"


# Delivery ---------------------------------------------------------------------------------------


def deliver(rt: Runtime, delivery_ids: Sequence[str]) -> int:
    """One attempt of each of ``delivery_ids`` (normally one subscription's), in order.

    Claims them in one transaction and records the results in one more; the HTTP requests go
    one after another over a kept-alive connection. A request is started only while the claim
    leaves it its full timeout; the rest are released to the scheduler. Returns how many were
    attempted.
    """
    now = utcnow()
    with rt.database.session() as session:
        works = service.claim(session, delivery_ids, now, rt.claim_for, rt.topic_of)
    if not works:
        return 0
    claim_ends = time.monotonic() + rt.claim_for.total_seconds()
    timeout = rt.settings.webhook_timeout_seconds
    finished: list[service.Finished] = []
    released: list[str] = []
    for index, work in enumerate(works):
        if index and claim_ends - time.monotonic() < timeout + 0.5:
            released = [w.delivery_id for w in works[index:]]
            break
        finished.append(_attempt(rt, work))
    with rt.database.session() as session:
        service.record(session, finished)
        service.release(session, released)
    for done in finished:
        _observe(done)
    return len(finished)


def _attempt(rt: Runtime, work: service.DeliveryWork) -> service.Finished:
    started = utcnow()
    if started >= work.expires_at:
        decision = service.Decision(Outcome.DEAD_LETTER, dead_letter_reason="TimeToLiveExceeded")
        return service.Finished(work, None, decision, started, started)
    body, content_type = builder.render(work.delivery_schema, [work.event], work.topic)
    headers = {
        "content-type": content_type,
        "aeg-event-type": "Notification",
        "aeg-delivery-count": str(work.attempt - 1),
        "aeg-subscription-name": work.subscription_id,
        **signing.sign_headers(work.secrets, work.event.id, int(time.time()), body),
    }
    try:
        response = rt.client.request("POST", work.endpoint_url, headers, body)
        result = service.AttemptResult(
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
        result = service.AttemptResult(
            status_code=None, latency_ms=exc.latency_ms, error=str(exc), error_kind=exc.kind
        )
    ended = utcnow()
    return service.Finished(work, result, service.decide(work, result, ended, rt.backoff), started, ended)


def _observe(done: service.Finished) -> None:
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
        DEAD_LETTERS.labels(decision.dead_letter_reason or "unknown").inc()
        logger.warning(
            "dead-lettered",
            reason=decision.dead_letter_reason,
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


# Validation handshake ---------------------------------------------------------------------------


def validation_url(rt: Runtime, subscription_id: str, code: str) -> str:
    base = rt.settings.effective_public_endpoint
    return f"{base}eventSubscriptions/{quote(subscription_id)}:validate?code={quote(code)}"


def handshake(rt: Runtime, subscription_id: str) -> str | None:
    with rt.database.session() as session:
        work = service.validation_work(session, subscription_id, rt.topic_of)
    if work is None:
        return None
    manual = False
    status_code: int | None = None
    latency = 0
    try:
        if work.delivery_schema is DeliverySchema.EVENT_GRID:
            event = builder.validation_event(
                new_uuid(),
                work.topic,
                work.validation_code,
                validation_url(rt, work.subscription_id, work.validation_code),
                utcnow(),
            )
            body = json.dumps([event]).encode()
            headers = {
                "content-type": "application/json",
                "aeg-event-type": "SubscriptionValidation",
                **signing.sign_headers(work.secrets, event["id"], int(time.time()), body),
            }
            response = rt.client.request("POST", work.endpoint_url, headers, body)
            status_code, latency = response.status, response.latency_ms
            echoed = _validation_response(response.body)
            if response.status == 200 and echoed == work.validation_code:
                validated, detail = True, "Validated: the endpoint echoed the validationCode."
            elif 200 <= response.status < 300:
                validated, manual = False, True
                detail = (
                    "The endpoint accepted the validation event without echoing validationResponse; "
                    "waiting for a GET on the validationUrl it was sent."
                )
            else:
                validated, detail = (
                    False,
                    f"The endpoint answered the validation event with HTTP {response.status}.",
                )
        else:
            response = rt.client.request(
                "OPTIONS",
                work.endpoint_url,
                {"webhook-request-origin": CLOUDEVENTS_ORIGIN, "webhook-request-rate": "120"},
            )
            status_code, latency = response.status, response.latency_ms
            allowed = response.headers.get("webhook-allowed-origin", "")
            origins = {o.strip() for o in allowed.split(",")}
            if 200 <= response.status < 300 and (CLOUDEVENTS_ORIGIN in origins or "*" in origins):
                validated, detail = True, "Validated: the endpoint allowed our WebHook-Request-Origin."
            elif 200 <= response.status < 300:
                validated = False
                detail = f"The OPTIONS answer did not carry WebHook-Allowed-Origin: {CLOUDEVENTS_ORIGIN}."
            else:
                validated, detail = (
                    False,
                    f"The endpoint answered the OPTIONS request with HTTP {response.status}.",
                )
    except WebhookError as exc:
        validated, detail, latency = False, str(exc), exc.latency_ms
    VALIDATIONS.labels("validated" if validated else "pending" if manual else "failed").inc()
    with rt.database.session() as session:
        return service.record_validation(
            session,
            work,
            validated=validated,
            detail=detail,
            status_code=status_code,
            latency_ms=latency,
            manual_possible=manual,
        )


def _validation_response(body: bytes) -> str | None:
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        return None
    if isinstance(parsed, dict):
        value = parsed.get("validationResponse")
        return value if isinstance(value, str) else None
    return None


# Celery wiring ----------------------------------------------------------------------------------


def register(app: Celery) -> None:
    @app.task(name=DELIVER_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def deliver_task(delivery_ids: list[str]) -> None:
        deliver(runtime(), delivery_ids)

    @app.task(name=VALIDATE_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)  # type: ignore[untyped-decorator]
    def validate_task(subscription_id: str) -> None:
        handshake(runtime(), subscription_id)


def _send(app: Celery, name: str, payloads: Sequence[object]) -> None:
    with app.producer_or_acquire() as producer:
        for payload in payloads:
            app.send_task(name, args=[payload], queue=EVENTS_QUEUE, producer=producer)


def batches(deliveries: Sequence[tuple[str, str]], size: int) -> list[list[str]]:
    """Delivery ids grouped by subscription, at most ``size`` per task (one slow endpoint then
    holds up only its own events)."""
    by_subscription: dict[str, list[str]] = {}
    for delivery_id, subscription_id in deliveries:
        by_subscription.setdefault(subscription_id, []).append(delivery_id)
    return [ids[i : i + size] for ids in by_subscription.values() for i in range(0, len(ids), size)]


def enqueue_deliveries(app: Celery, rt: Runtime, deliveries: Sequence[tuple[str, str]]) -> bool:
    """Send delivery tasks; on broker failure, hand them back to the scheduler soon."""
    if not deliveries:
        return True
    try:
        _send(app, DELIVER_TASK, batches(deliveries, rt.settings.events_delivery_batch_size))
    except Exception as exc:  # kombu/redis raise many types while the broker is away
        log.warning(
            "broker unavailable; deliveries stay in the outbox", error=str(exc), count=len(deliveries)
        )
        with rt.database.session() as session:
            service.release_enqueue(session, [d for d, _ in deliveries], utcnow() + timedelta(seconds=1))
        return False
    return True


def enqueue_validations(app: Celery, rt: Runtime, ids: Sequence[str]) -> None:
    if not ids:
        return
    try:
        _send(app, VALIDATE_TASK, list(ids))
    except Exception as exc:
        log.warning("broker unavailable; validations will be retried", error=str(exc))
        with rt.database.session() as session:
            from sqlalchemy import update

            from gateway.events.models import EventSubscription

            session.execute(
                update(EventSubscription)
                .where(EventSubscription.id.in_(list(ids)))
                .values(validation_next_at=utcnow() + timedelta(seconds=1))
            )


class Dispatcher:
    """Moves outbox rows to the broker, re-enqueues due or lost deliveries, starts handshakes.

    Several may run (one per worker node): rows are taken with SKIP LOCKED on PostgreSQL, and
    SQLite serialises writers.
    """

    def __init__(self, app: Celery, rt: Runtime, batch: int = 500) -> None:
        self.app = app
        self.rt = rt
        self.batch = batch
        self.stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_purge = 0.0

    def run_once(self) -> int:
        """One pass; returns how much work it found."""
        now = utcnow()
        lease = self.rt.enqueue_lease
        with self.rt.database.session() as session:
            dispatched = service.dispatch_pending(session, now, lease, self.batch)
        with self.rt.database.session() as session:
            due = service.due_deliveries(session, now, lease, self.batch)
        with self.rt.database.session() as session:
            validations = service.due_validations(
                session, now, self.rt.claim_for + timedelta(seconds=self.rt.settings.webhook_timeout_seconds)
            )
        for event_type in dispatched.event_types:
            EVENTS_PUBLISHED.labels(event_type).inc()
        enqueue_deliveries(self.app, self.rt, dispatched.deliveries)
        enqueue_deliveries(self.app, self.rt, due)
        enqueue_validations(self.app, self.rt, validations)
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + 60
            keep = timedelta(days=self.rt.settings.events_retention_days)
            with self.rt.database.session() as session:
                purged = service.purge_finished(session, now - keep)
            if purged:
                log.info("finished events purged", count=purged)
        return len(dispatched.event_types) + len(due) + len(validations)

    def loop(self) -> None:
        interval = self.rt.settings.events_dispatch_interval_seconds
        while not self.stop.is_set():
            try:
                found = self.run_once()
            except Exception:
                log.exception("dispatcher pass failed")
                found = 0
                self.stop.wait(1.0)
            if found < self.batch:
                self.stop.wait(interval)

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.loop, name="trunkline-dispatcher", daemon=True)
        self._thread.start()
        return self._thread

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
