"""Attempts and their recording (gateway.events.sender, .deliveries, .history): retries, dead
letters, replay, expiry, connect-time SSRF, TLS verification; in one process on SQLite."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.events import builder, fanout, history, sender, subscriptions
from gateway.events.backoff import Backoff
from gateway.events.http import WebhookClient
from gateway.events.lifecycle import DeliveryStatus
from gateway.events.models import Delivery, DeliveryAttempt
from gateway.events.runtime import Runtime, limits_from_settings, policy_from_settings, topic_namer
from gateway.events.ssrf import Policy

from .harness import Receiver, make_tls, running_receiver
from .inprocess import activate, deliver_all, dispatch, sms, subscribe


def test_4xx_dead_letters_at_once_and_replay_delivers(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path), mode="status:404") as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        activate(database, sub.id)
        receiver.secrets = [sub.secret]
        event_id = sms(database, resource_id)
        ids = dispatch(rt)
        assert sender.deliver(rt, ids) == 1
        assert sender.deliver(rt, ids) == 0  # nothing more to do: not pending any more
        assert receiver.hits == 1
        with database.session() as session:
            ((dead, _),) = history.list_deliveries(session, sub.id, status=DeliveryStatus.DEAD_LETTERED)
            assert dead.dead_letter_reason == "NonRetryableStatusCode"
            assert dead.last_status_code == 404
            assert dead.last_response == "receiver says no"
            attempts = history.list_attempts(session, sub.id, event_id=event_id)
            assert [(a.number, a.status_code, a.outcome) for a in attempts] == [(1, 404, "deadLetter")]
        receiver.mode = "ok"
        with database.session() as session:
            assert history.replay(session, sub.id) == [event_id]
        with database.session() as session:
            due = fanout.due_deliveries(session, utcnow(), rt.enqueue_lease)
        assert [d.delivery_id for d in due] == ids
        deliver_all(rt, due)
        assert receiver.event_ids() == [event_id]


def test_retries_then_max_attempts_dead_letter(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path), mode="status:503") as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url, max_delivery_attempts=3)
        activate(database, sub.id)
        sms(database, resource_id)
        (delivery_id,) = dispatch(rt)
        assert sender.deliver(rt, [delivery_id]) == 1
        with database.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert (row.status, row.attempts, row.enqueued_until) == (DeliveryStatus.PENDING, 1, None)
            (attempt,) = history.list_attempts(session, sub.id)
            waited = (row.next_attempt_at - attempt.started_at).total_seconds()
            assert 0 < waited <= 0.05 * 1.2 + 2  # backoff (jittered, capped) after the attempt
        for _ in range(10):
            with database.session() as session:
                if session.get(Delivery, delivery_id).status != DeliveryStatus.PENDING:  # type: ignore[union-attr]
                    break
            with database.session() as session:
                session.execute(
                    Delivery.__table__.update()
                    .where(Delivery.id == delivery_id)
                    .values(next_attempt_at=utcnow() - timedelta(seconds=1))
                )
            sender.deliver(rt, [delivery_id])
        assert receiver.hits == 3
        with database.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert row.status == DeliveryStatus.DEAD_LETTERED
            assert row.dead_letter_reason == "MaxDeliveryAttemptsExceeded"
            assert row.attempts == 3


def test_expired_event_is_dead_lettered_without_an_attempt(
    database: Database, settings: Settings, rt: Runtime, resource_id: str
) -> None:
    sub = subscribe(database, settings, resource_id, "https://localhost:9/never")
    activate(database, sub.id)
    sms(database, resource_id)
    (delivery_id,) = dispatch(rt)
    with database.session() as session:
        session.execute(
            Delivery.__table__.update()
            .where(Delivery.id == delivery_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    sender.deliver(rt, [delivery_id])
    with database.session() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        assert (row.status, row.dead_letter_reason, row.attempts) == (
            DeliveryStatus.DEAD_LETTERED,
            "TimeToLiveExceeded",
            0,
        )
        assert session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 0


REBOUND = [
    "127.0.0.1",
    "::1",
    "10.0.0.7",
    "192.168.0.9",
    "fd12::1",
    "100.64.0.1",
    "169.254.1.1",
    "fe80::1",
    "224.0.0.1",
    "ff02::1",
    "169.254.169.254",
    "fd00:ec2::254",
    "0.0.0.0",
    "::ffff:127.0.0.1",
]


@pytest.mark.parametrize("rebound_to", REBOUND)
def test_connect_time_guard_catches_dns_rebinding(
    database: Database, settings: Settings, resource_id: str, tmp_path: Path, rebound_to: str
) -> None:
    """Registered while the name resolved to a public address; at delivery it resolves inside."""
    with running_receiver(make_tls(tmp_path)) as receiver:
        strict = settings.model_copy(update={"webhook_allowed_networks": []})
        with database.session() as session:
            sub = subscriptions.create_subscription(
                session,
                resource_id,
                subscriptions.SubscriptionSpec(
                    f"https://hooks.example:{receiver.port}/x", [builder.SMS_RECEIVED]
                ),
                policy_from_settings(strict),
                limits_from_settings(strict),
                resolver=lambda host, port: ["93.184.216.34"],
            )
        activate(database, sub.id)
        client = WebhookClient(Policy(), resolver=lambda host, port: [rebound_to], timeout=2)
        rt = Runtime(strict, database, client, Backoff(0.01, 0.05), topic_namer(strict))
        sms(database, resource_id)
        (delivery_id,) = dispatch(rt)
        sender.deliver(rt, [delivery_id])
        client.close()
        assert receiver.hits == 0
        with database.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert row.status == DeliveryStatus.DEAD_LETTERED
            assert row.dead_letter_reason == "DestinationRefused"
            assert row.last_error is not None
            assert "DestinationRefused" in row.last_error


def test_https_is_verified_against_the_configured_bundle_only(
    database: Database, settings: Settings, resource_id: str, tmp_path: Path
) -> None:
    """A receiver whose certificate chains to an unknown CA is a failed (retried) attempt."""
    with running_receiver(make_tls(tmp_path / "other-ca")) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        activate(database, sub.id)
        rt = Runtime.from_settings(settings, database)  # trusts tmp_path's CA, not other-ca's
        sms(database, resource_id)
        (delivery_id,) = dispatch(rt)
        sender.deliver(rt, [delivery_id])
        rt.client.close()
        assert receiver.received == []
        with database.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert row.status == DeliveryStatus.PENDING
            assert row.last_error is not None
            assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


def test_receiver_fixture_rejects_bad_signatures(tmp_path: Path) -> None:
    """The receivers used across these tests do fail on a wrong secret."""
    from gateway.events import signing

    receiver = Receiver(make_tls(tmp_path), secrets=[signing.generate_secret()])
    body = b"[]"
    headers = signing.sign_headers([signing.generate_secret()], "id", int(__import__("time").time()), body)
    with pytest.raises(Exception, match="signature"):
        receiver.accept(headers, body)
