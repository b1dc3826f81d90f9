"""One validation handshake over HTTP, as Event Grid does it.

Event Grid schema: POST a ``SubscriptionValidationEvent``; the endpoint echoes its
``validationCode`` (or accepts it and later GETs the ``validationUrl``). CloudEvents: an OPTIONS
abuse-protection request whose answer must allow our ``WebHook-Request-Origin``. What an answer
means is decided by the pure ``*_verdict`` functions; what it does to the subscription, by
:func:`gateway.events.validation.record_validation`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from urllib.parse import quote

from gateway.core.db import new_uuid, utcnow
from gateway.events import builder, signing, validation
from gateway.events.builder import DeliverySchema
from gateway.events.http import HttpResult, WebhookError
from gateway.events.lifecycle import FailureKind
from gateway.events.metrics import VALIDATIONS
from gateway.events.models import SubscriptionStatus
from gateway.events.runtime import Runtime
from gateway.events.validation import HandshakeResult, ValidationWork, Verdict

CLOUDEVENTS_ORIGIN = "eventgrid.azure.net"


def validation_url(rt: Runtime, subscription_id: str, code: str) -> str:
    base = rt.settings.effective_public_endpoint
    return f"{base}eventSubscriptions/{quote(subscription_id)}:validate?code={quote(code)}"


def eventgrid_verdict(status: int, body: bytes, code: str) -> Verdict:
    """The answer to a POSTed validation event."""
    if status == 200 and _validation_response(body) == code:
        return Verdict(HandshakeResult.VALIDATED, "Validated: the endpoint echoed the validationCode.")
    if 200 <= status < 300:
        return Verdict(
            HandshakeResult.MANUAL,
            "The endpoint accepted the validation event without echoing validationResponse; "
            "waiting for a GET on the validationUrl it was sent.",
        )
    return Verdict(HandshakeResult.FAILED, f"The endpoint answered the validation event with HTTP {status}.")


def cloudevents_verdict(status: int, headers: Mapping[str, str]) -> Verdict:
    """The answer to the OPTIONS abuse-protection request (``headers`` lower-cased)."""
    allowed = headers.get("webhook-allowed-origin", "")
    origins = {o.strip() for o in allowed.split(",")}
    if 200 <= status < 300 and (CLOUDEVENTS_ORIGIN in origins or "*" in origins):
        return Verdict(
            HandshakeResult.VALIDATED, "Validated: the endpoint allowed our WebHook-Request-Origin."
        )
    if 200 <= status < 300:
        return Verdict(
            HandshakeResult.FAILED,
            f"The OPTIONS answer did not carry WebHook-Allowed-Origin: {CLOUDEVENTS_ORIGIN}.",
        )
    return Verdict(HandshakeResult.FAILED, f"The endpoint answered the OPTIONS request with HTTP {status}.")


def _validation_response(body: bytes) -> str | None:
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        return None
    if isinstance(parsed, dict):
        value = parsed.get("validationResponse")
        return value if isinstance(value, str) else None
    return None


def _send_eventgrid(rt: Runtime, work: ValidationWork) -> HttpResult:
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
    return rt.client.request("POST", work.endpoint_url, headers, body)


def _send_cloudevents(rt: Runtime, work: ValidationWork) -> HttpResult:
    return rt.client.request(
        "OPTIONS",
        work.endpoint_url,
        {"webhook-request-origin": CLOUDEVENTS_ORIGIN, "webhook-request-rate": "120"},
    )


def handshake(rt: Runtime, subscription_id: str) -> SubscriptionStatus | None:
    """Run one handshake for a pending subscription; returns its new status (None: nothing to
    do, or the subscription is gone)."""
    with rt.database.session() as session:
        work = validation.validation_work(session, subscription_id, rt.topic_of)
    if work is None:
        return None
    status_code: int | None = None
    try:
        if work.delivery_schema is DeliverySchema.EVENT_GRID:
            response = _send_eventgrid(rt, work)
            verdict = eventgrid_verdict(response.status, response.body, work.validation_code)
        else:
            response = _send_cloudevents(rt, work)
            verdict = cloudevents_verdict(response.status, response.headers)
        status_code, latency = response.status, response.latency_ms
    except WebhookError as exc:
        refused = exc.kind is FailureKind.DESTINATION_REFUSED
        verdict = Verdict(HandshakeResult.FAILED, exc.message if refused else str(exc), refused=refused)
        latency = exc.latency_ms
    VALIDATIONS.labels(verdict.result.value).inc()
    with rt.database.session() as session:
        return validation.record_validation(
            session, work, verdict, status_code=status_code, latency_ms=latency
        )
