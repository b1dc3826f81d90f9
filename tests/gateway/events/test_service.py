"""The pipeline in one process on SQLite: publish seam, fan-out, handshakes, delivery rules,
dead letters and replay, connect-time SSRF. Worker processes and Redis: test_pipeline.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.core.db import Database, utcnow
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.events import builder, service, tasks
from gateway.events.backoff import Backoff
from gateway.events.http import WebhookClient
from gateway.events.models import Delivery, DeliveryAttempt, EventSubscription, OutboxEvent
from gateway.events.runtime import Runtime, limits_from_settings, policy_from_settings, topic_namer
from gateway.events.ssrf import Policy
from gateway.resources.service import create_resource

from .harness import Receiver, make_tls, running_receiver

LOOPBACK = "127.0.0.0/8,::1/128"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'events.db'}",
        webhook_allowed_networks=LOOPBACK,  # type: ignore[arg-type]
        webhook_ca_bundle=make_tls(tmp_path).ca_file,
        webhook_timeout_seconds=2,
        events_retry_base_seconds=0.01,
        events_retry_max_seconds=0.05,
        public_endpoint="https://gateway.test/",
    )


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.effective_database_url)
    upgrade(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def rt(settings: Settings, database: Database) -> Iterator[Runtime]:
    runtime = Runtime.from_settings(settings, database)
    yield runtime
    runtime.client.close()


@pytest.fixture
def resource_id(database: Database) -> str:
    with database.session() as session:
        return create_resource(session, "app-one", "https://gateway.test/").id


def subscribe(
    database: Database, settings: Settings, resource_id: str, url: str, **kwargs: Any
) -> EventSubscription:
    spec = service.SubscriptionSpec(
        endpoint_url=url, event_types=kwargs.pop("types", list(builder.KNOWN_EVENT_TYPES)), **kwargs
    )
    with database.session() as session:
        return service.create_subscription(
            session, resource_id, spec, policy_from_settings(settings), limits_from_settings(settings)
        )


def activate(database: Database, subscription_id: str) -> None:
    with database.session() as session:
        sub = session.get(EventSubscription, subscription_id)
        assert sub is not None
        sub.status = service.ACTIVE


def sms(database: Database, resource_id: str, to: str = "+15550001111", **kwargs: Any) -> str:
    with database.session() as session:
        return service.publish(
            session,
            resource_id=resource_id,
            event_type=builder.SMS_RECEIVED,
            subject=builder.phone_subject(to),
            data=builder.sms_received_data("m1", "+15550002222", to, "hello", utcnow()),
            **kwargs,
        )


def dispatch(rt: Runtime) -> list[str]:
    with rt.database.session() as session:
        return service.dispatch_pending(session, utcnow(), rt.enqueue_lease).delivery_ids


def deliver_all(rt: Runtime, ids: list[Any]) -> None:
    flat = [i if isinstance(i, str) else i[0] for i in ids]
    assert tasks.deliver(rt, flat) == len(flat)


def test_publish_is_part_of_the_callers_transaction(database: Database, resource_id: str) -> None:
    class Boom(Exception):
        pass

    def publish_then_fail() -> None:
        with database.session() as session:
            service.publish(
                session, resource_id=resource_id, event_type=builder.SMS_RECEIVED, subject="/x", data={"a": 1}
            )
            raise Boom

    with pytest.raises(Boom):
        publish_then_fail()
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    event_id = sms(database, resource_id, event_id="Incoming_fixed")
    assert event_id == "Incoming_fixed"
    with database.session() as session:
        row = session.get(OutboxEvent, event_id)
        assert row is not None
        assert row.dispatched_at is None
    with pytest.raises(TypeError), database.session() as session:
        service.publish(session, resource_id=resource_id, event_type="t", subject="s", data={"x": object()})


def test_fan_out_honours_types_subject_filters_and_validation(
    database: Database, settings: Settings, rt: Runtime, resource_id: str
) -> None:
    all_types = subscribe(database, settings, resource_id, "https://localhost:1/a")
    calls_only = subscribe(
        database, settings, resource_id, "https://localhost:1/b", types=[builder.INCOMING_CALL]
    )
    filtered = subscribe(
        database, settings, resource_id, "https://localhost:1/c", subject_ends_with="15550001111"
    )
    pending = subscribe(database, settings, resource_id, "https://localhost:1/d")
    for sub in (all_types, calls_only, filtered):
        activate(database, sub.id)
    with database.session() as session:
        other = create_resource(session, "app-two", "https://gateway.test/").id
    sms(database, resource_id, to="+15550001111")
    sms(database, resource_id, to="+15559999999")
    sms(database, other)
    ids = dispatch(rt)
    with database.session() as session:
        rows = session.scalars(select(Delivery).where(Delivery.id.in_(ids))).all()
        by_sub: dict[str, int] = {}
        for row in rows:
            by_sub[row.subscription_id] = by_sub.get(row.subscription_id, 0) + 1
        assert by_sub == {all_types.id: 2, filtered.id: 1}
        assert pending.id not in by_sub
        assert session.scalar(select(func.count()).where(OutboxEvent.dispatched_at.is_(None))) == 0
    assert dispatch(rt) == []


def test_eventgrid_handshake_then_signed_delivery(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path)) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        receiver.secrets = [sub.secret]
        sms(database, resource_id)  # before validation: not delivered to this subscription
        assert dispatch(rt) == []
        assert tasks.handshake(rt, sub.id) == service.ACTIVE
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


def test_secret_rotation_sends_both_signatures(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path)) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        activate(database, sub.id)
        with database.session() as session:
            rotated = service.rotate_secret(session, sub.id, limits_from_settings(settings))
        assert rotated.secret != sub.secret
        receiver.secrets = [sub.secret, rotated.secret]  # the receiver checks each one verifies
        sms(database, resource_id)
        deliver_all(rt, dispatch(rt))
        assert receiver.errors == []
        assert len(receiver.received) == 1
        assert len(receiver.received[0].headers["webhook-signature"].split(" ")) == 2


def test_cloudevents_handshake_and_delivery(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path), schema="CloudEventSchemaV1_0") as receiver:
        sub = subscribe(
            database, settings, resource_id, receiver.url, delivery_schema=builder.DeliverySchema.CLOUD_EVENTS
        )
        receiver.secrets = [sub.secret]
        assert tasks.handshake(rt, sub.id) == service.ACTIVE
        assert receiver.handshakes == [f"OPTIONS {tasks.CLOUDEVENTS_ORIGIN}"]
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
        assert tasks.handshake(rt, sub.id) == service.PENDING_VALIDATION
        with database.session() as session:
            again = service.get_subscription(session, sub.id)
            assert again.status_detail is not None
            assert "WebHook-Allowed-Origin" in again.status_detail
            assert again.validation_next_at is not None
            again.validation_attempts = service.MAX_VALIDATION_ATTEMPTS - 1
        assert tasks.handshake(rt, sub.id) == service.VALIDATION_FAILED
        activate_count = len(dispatch(rt))
        assert activate_count == 0


def test_manual_validation_by_url(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from gateway.app import create_app

    with running_receiver(make_tls(tmp_path), echo_validation=False) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        assert tasks.handshake(rt, sub.id) == service.PENDING_VALIDATION
        with database.session() as session:
            detail = service.get_subscription(session, sub.id).status_detail
        assert detail is not None
        assert "validationUrl" in detail
        url = tasks.validation_url(rt, sub.id, receiver.handshakes[0])
        path = url.removeprefix(settings.effective_public_endpoint.rstrip("/"))
        with TestClient(create_app(settings, database)) as client:
            wrong = client.get(path.replace(receiver.handshakes[0], "nope"))
            assert wrong.status_code == 404
            assert wrong.json()["error"]["code"] == "ValidationNotFound"
            ok = client.get(path)
            assert ok.status_code == 200, ok.text
            assert ok.json() == {"status": "active"}


def test_4xx_dead_letters_at_once_and_replay_delivers(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path), mode="status:404") as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        activate(database, sub.id)
        receiver.secrets = [sub.secret]
        event_id = sms(database, resource_id)
        ids = dispatch(rt)
        assert tasks.deliver(rt, ids) == 1
        assert tasks.deliver(rt, ids) == 0  # nothing more to do: not pending any more
        assert receiver.hits == 1
        with database.session() as session:
            ((dead, _),) = service.list_deliveries(session, sub.id, status=service.DEAD_LETTERED)
            assert dead.dead_letter_reason == "NonRetryableStatusCode"
            assert dead.last_status_code == 404
            assert dead.last_response == "receiver says no"
            attempts = service.list_attempts(session, sub.id, event_id=event_id)
            assert [(a.number, a.status_code, a.outcome) for a in attempts] == [(1, 404, "deadLetter")]
        receiver.mode = "ok"
        with database.session() as session:
            assert service.replay(session, sub.id) == [event_id]
        with database.session() as session:
            due = service.due_deliveries(session, utcnow(), rt.enqueue_lease)
        assert [d for d, _ in due] == ids
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
        assert tasks.deliver(rt, [delivery_id]) == 1
        with database.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert (row.status, row.attempts, row.enqueued_until) == (service.PENDING, 1, None)
            (attempt,) = service.list_attempts(session, sub.id)
            waited = (row.next_attempt_at - attempt.started_at).total_seconds()
            assert 0 < waited <= 0.05 * 1.2 + 2  # backoff (jittered, capped) after the attempt
        for _ in range(10):
            with database.session() as session:
                if session.get(Delivery, delivery_id).status != service.PENDING:  # type: ignore[union-attr]
                    break
            with database.session() as session:
                session.execute(
                    Delivery.__table__.update()
                    .where(Delivery.id == delivery_id)
                    .values(next_attempt_at=utcnow() - timedelta(seconds=1))
                )
            tasks.deliver(rt, [delivery_id])
        assert receiver.hits == 3
        with database.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert row.status == service.DEAD_LETTERED
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
    tasks.deliver(rt, [delivery_id])
    with database.session() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        assert (row.status, row.dead_letter_reason, row.attempts) == (
            service.DEAD_LETTERED,
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
            sub = service.create_subscription(
                session,
                resource_id,
                service.SubscriptionSpec(f"https://hooks.example:{receiver.port}/x", [builder.SMS_RECEIVED]),
                policy_from_settings(strict),
                limits_from_settings(strict),
                resolver=lambda host, port: ["93.184.216.34"],
            )
        activate(database, sub.id)
        client = WebhookClient(Policy(), resolver=lambda host, port: [rebound_to], timeout=2)
        rt = Runtime(strict, database, client, Backoff(0.01, 0.05), topic_namer(strict))
        sms(database, resource_id)
        (delivery_id,) = dispatch(rt)
        tasks.deliver(rt, [delivery_id])
        client.close()
        assert receiver.hits == 0
        with database.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert row.status == service.DEAD_LETTERED
            assert row.dead_letter_reason == "DestinationRefused"
            assert row.last_error is not None
            assert "DestinationRefused" in row.last_error


def test_redirects_are_not_followed_and_bodies_are_capped(tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path == "/redirect":
                self.send_response(307)
                self.send_header("location", "http://127.0.0.1:1/elsewhere")
                self.send_header("content-length", "0")
                self.end_headers()
                return
            body = b"x" * 100_000
            self.send_response(500)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        client = WebhookClient(
            Policy(tuple(__import__("ipaddress").ip_network(n) for n in ["127.0.0.0/8"])),
            max_response_bytes=1000,
        )
        redirected = client.request("POST", f"http://127.0.0.1:{port}/redirect", {}, b"{}")
        assert redirected.status == 307
        big = client.request("POST", f"http://127.0.0.1:{port}/big", {}, b"{}")
        assert big.status == 500
        assert len(big.body) == 1000
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_plain_http_outside_allowed_networks_is_refused_at_connect() -> None:
    client = WebhookClient(Policy(), resolver=lambda host, port: ["93.184.216.34"], connect_timeout=0.5)
    with pytest.raises(Exception, match="https"):
        client.request("POST", "http://hooks.example/x", {}, b"{}")
    client.close()


def test_test_event_goes_only_to_that_subscription(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path)) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url, types=[builder.INCOMING_CALL])
        other = subscribe(database, settings, resource_id, receiver.url + "2")
        receiver.secrets = [sub.secret]
        with database.session() as session, pytest.raises(Exception, match="pendingValidation"):
            service.send_test_event(session, sub.id)
        activate(database, sub.id)
        activate(database, other.id)
        with database.session() as session:
            event_id = service.send_test_event(session, sub.id)
        with database.session() as session:
            due = service.due_deliveries(session, utcnow(), rt.enqueue_lease)
        assert len(due) == 1
        deliver_all(rt, due)
        assert receiver.event_ids() == [event_id]
        assert receiver.received[0].event_type == builder.INCOMING_CALL
        assert receiver.errors == []


def test_receiver_fixture_rejects_bad_signatures(tmp_path: Path) -> None:
    """The receivers used across these tests do fail on a wrong secret."""
    from gateway.events import signing

    receiver = Receiver(make_tls(tmp_path), secrets=[signing.generate_secret()])
    body = b"[]"
    headers = signing.sign_headers([signing.generate_secret()], "id", int(__import__("time").time()), body)
    with pytest.raises(Exception, match="signature"):
        receiver.accept(headers, body)


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
        tasks.deliver(rt, [delivery_id])
        rt.client.close()
        assert receiver.received == []
        with database.session() as session:
            row = session.get(Delivery, delivery_id)
            assert row is not None
            assert row.status == service.PENDING
            assert row.last_error is not None
            assert "CERTIFICATE_VERIFY_FAILED" in row.last_error


def test_finished_events_are_purged_after_retention(
    database: Database, settings: Settings, rt: Runtime, resource_id: str
) -> None:
    sub = subscribe(database, settings, resource_id, "https://localhost:9/never")
    activate(database, sub.id)
    done, waiting, fresh = (sms(database, resource_id) for _ in range(3))
    dispatch(rt)
    with database.session() as session:
        for event_id, status in ((done, service.DELIVERED), (waiting, service.PENDING)):
            session.execute(
                Delivery.__table__.update().where(Delivery.event_id == event_id).values(status=status)
            )
        session.execute(
            OutboxEvent.__table__.update()
            .where(OutboxEvent.id.in_([done, waiting]))
            .values(dispatched_at=utcnow() - timedelta(days=40))
        )
    with database.session() as session:
        assert service.purge_finished(session, utcnow() - timedelta(days=30)) == 1
    with database.session() as session:
        assert session.get(OutboxEvent, done) is None
        assert session.get(OutboxEvent, waiting) is not None  # still pending somewhere
        assert session.get(OutboxEvent, fresh) is not None  # too recent
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2


@pytest.mark.parametrize("peer_closes", [False, True])
@pytest.mark.parametrize("tls", [False, True])
def test_connections_are_kept_alive_and_replaced_when_the_peer_closed_them(
    tmp_path: Path, tls: bool, peer_closes: bool
) -> None:
    """Requests reuse one connection; if the receiver dropped it without saying so, the next
    request goes out on a fresh one."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gateway.events.ssrf import parse_networks

    served: list[str] = []
    clients: set[Any] = set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            served.append(self.path)
            clients.add(self.client_address)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            self.close_connection = peer_closes  # without a "Connection: close" header

    files = make_tls(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(files.cert_file), str(files.key_file))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = WebhookClient(Policy(parse_networks(["127.0.0.0/8"])), ca_bundle=files.ca_file, timeout=5)
    try:
        base = f"{'https' if tls else 'http'}://localhost:{server.server_address[1]}"
        for n in range(3):
            assert client.request("POST", f"{base}/{n}", {}, b"{}").status == 200
        assert served == ["/0", "/1", "/2"]
        assert len(clients) == (3 if peer_closes else 1)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
