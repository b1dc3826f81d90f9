"""The validation handshake over HTTP (gateway.events.handshake, .validation), in one process on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.events import builder, handshake, subscriptions, validation
from gateway.events.models import SubscriptionStatus
from gateway.events.runtime import Runtime

from .harness import make_tls, running_receiver
from .inprocess import deliver_all, dispatch, sms, subscribe


def test_eventgrid_handshake_then_signed_delivery(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path)) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        receiver.secrets = [sub.secret]
        sms(database, resource_id)  # before validation: not delivered to this subscription
        assert dispatch(rt) == []
        assert handshake.handshake(rt, sub.id) == SubscriptionStatus.ACTIVE
        assert len(receiver.handshakes) == 1
        event_id = sms(database, resource_id)
        deliver_all(rt, dispatch(rt))
        assert receiver.event_ids() == [event_id]
        assert receiver.errors == []
        got = receiver.received[0]
        assert got.headers["aeg-event-type"] == "Notification"
        payload = json.loads(got.body)[0]
        assert payload["topic"] == builder.resource_topic(
            settings.events_topic_subscription_id, settings.events_topic_resource_group, "app-one"
        )


def test_cloudevents_handshake_and_delivery(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path), schema="CloudEventSchemaV1_0") as receiver:
        sub = subscribe(
            database, settings, resource_id, receiver.url, delivery_schema=builder.DeliverySchema.CLOUD_EVENTS
        )
        receiver.secrets = [sub.secret]
        assert handshake.handshake(rt, sub.id) == SubscriptionStatus.ACTIVE
        assert receiver.handshakes == [f"OPTIONS {handshake.CLOUDEVENTS_ORIGIN}"]
        event_id = sms(database, resource_id)
        deliver_all(rt, dispatch(rt))
        assert receiver.event_ids() == [event_id]
        assert receiver.received[0].headers["content-type"].startswith("application/cloudevents+json")


def test_cloudevents_handshake_refused_without_allowed_origin(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path), schema="CloudEventSchemaV1_0", allow_origin=False) as receiver:
        sub = subscribe(
            database, settings, resource_id, receiver.url, delivery_schema=builder.DeliverySchema.CLOUD_EVENTS
        )
        assert handshake.handshake(rt, sub.id) == SubscriptionStatus.PENDING_VALIDATION
        with database.session() as session:
            again = subscriptions.get_subscription(session, sub.id)
            assert again.status_detail is not None
            assert "WebHook-Allowed-Origin" in again.status_detail
            assert again.validation_next_at is not None
            again.validation_attempts = validation.MAX_VALIDATION_ATTEMPTS - 1
        assert handshake.handshake(rt, sub.id) == SubscriptionStatus.VALIDATION_FAILED
        activate_count = len(dispatch(rt))
        assert activate_count == 0


def test_manual_validation_by_url(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    with running_receiver(make_tls(tmp_path), echo_validation=False) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        assert handshake.handshake(rt, sub.id) == SubscriptionStatus.PENDING_VALIDATION
        with database.session() as session:
            detail = subscriptions.get_subscription(session, sub.id).status_detail
        assert detail is not None
        assert "validationUrl" in detail
        url = handshake.validation_url(rt, sub.id, receiver.handshakes[0])
        path = url.removeprefix(settings.effective_public_endpoint.rstrip("/"))
        with TestClient(create_app(settings, database)) as client:
            wrong = client.get(path.replace(receiver.handshakes[0], "nope"))
            assert wrong.status_code == 404
            assert wrong.json()["error"]["code"] == "ValidationNotFound"
            ok = client.get(path)
            assert ok.status_code == 200, ok.text
            assert ok.json() == {"status": "active"}


# What an answer means (pure) --------------------------------------------------------------------


def test_eventgrid_verdicts() -> None:
    from gateway.events.validation import HandshakeResult

    echoed = json.dumps({"validationResponse": "c0de"}).encode()
    assert handshake.eventgrid_verdict(200, echoed, "c0de").result is HandshakeResult.VALIDATED
    assert handshake.eventgrid_verdict(200, echoed, "other").result is HandshakeResult.MANUAL
    assert handshake.eventgrid_verdict(202, b"not json", "c0de").result is HandshakeResult.MANUAL
    assert handshake.eventgrid_verdict(201, echoed, "c0de").result is HandshakeResult.MANUAL  # 200 only
    refused = handshake.eventgrid_verdict(403, echoed, "c0de")
    assert (refused.result, refused.detail) == (
        HandshakeResult.FAILED,
        "The endpoint answered the validation event with HTTP 403.",
    )


def test_cloudevents_verdicts() -> None:
    from gateway.events.validation import HandshakeResult

    origin = handshake.CLOUDEVENTS_ORIGIN
    allowed = {"webhook-allowed-origin": f"example.org, {origin}"}
    assert handshake.cloudevents_verdict(200, allowed).result is HandshakeResult.VALIDATED
    anyone = {"webhook-allowed-origin": "*"}
    assert handshake.cloudevents_verdict(204, anyone).result is HandshakeResult.VALIDATED
    assert handshake.cloudevents_verdict(200, {}).result is HandshakeResult.FAILED
    assert handshake.cloudevents_verdict(500, allowed).result is HandshakeResult.FAILED


def test_a_handshake_refused_by_the_workers_guard_waits_and_resumes_when_a_worker_starts(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    """The CLI was given TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS, the running worker was not."""
    from datetime import timedelta

    from gateway.core.db import utcnow

    strict = Runtime.from_settings(settings.model_copy(update={"webhook_allowed_networks": []}), database)
    try:
        with running_receiver(make_tls(tmp_path)) as receiver:
            sub = subscribe(database, settings, resource_id, receiver.url)
            assert handshake.handshake(strict, sub.id) == SubscriptionStatus.PENDING_VALIDATION
            assert receiver.handshakes == []
            with database.session() as session:
                parked = subscriptions.get_subscription(session, sub.id)
                detail = parked.status_detail or ""
                assert parked.validation_next_at is None  # waits, does not burn its tries
                assert validation.due_validations(session, utcnow(), timedelta(seconds=5)) == []
            assert detail.startswith(validation.REFUSED_BY_WORKER)
            assert "TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8" in detail
            assert f"trunkline events validate {sub.id}" in detail

            # A worker started with the setting hands it out again, and it validates.
            with database.session() as session:
                assert validation.resume_refused_validations(session, utcnow()) == 1
            with database.session() as session:
                assert validation.due_validations(session, utcnow(), timedelta(seconds=5)) == [sub.id]
            assert handshake.handshake(rt, sub.id) == SubscriptionStatus.ACTIVE
            with database.session() as session:
                assert validation.resume_refused_validations(session, utcnow()) == 0
    finally:
        strict.client.close()
