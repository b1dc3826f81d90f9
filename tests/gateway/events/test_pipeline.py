"""The whole pipeline with real PostgreSQL, real Redis and real ``trunkline worker`` processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.events import builder, fanout, history, samples, service, subscriptions
from gateway.events.lifecycle import DeliveryStatus
from gateway.events.models import Delivery, SubscriptionStatus
from gateway.resources.service import create_resource
from tests.support.postgres import Postgres

from .harness import (
    REPO,
    Receiver,
    RedisServer,
    Stack,
    make_tls,
    running_receiver,
    wait_until,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def private_stack(postgres: Postgres, tmp_path: Path) -> Iterator[tuple[Stack, RedisServer]]:
    server = RedisServer(tmp_path)
    stack = Stack(postgres.new_database(), server.url, tmp_path, make_tls(tmp_path))
    try:
        yield stack, server
    finally:
        stack.stop_workers()
        server.stop()


def settings_of(stack: Stack) -> Settings:
    return Settings(**{k.removeprefix("TRUNKLINE_").lower(): v for k, v in stack.settings_env().items()})


class App:
    """The test's view of one resource in a stack's database."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.stack = stack
        self.settings = settings_of(stack)
        self.database = Database(stack.database_url)
        with self.database.session() as session:
            self.resource_id = create_resource(session, name, "https://gateway.test/").id
        self.name = name

    def subscribe(self, receiver: Receiver, **kwargs: Any) -> str:
        from gateway.events.runtime import limits_from_settings, policy_from_settings

        spec = subscriptions.SubscriptionSpec(
            receiver.url,
            kwargs.pop("types", list(builder.KNOWN_EVENT_TYPES)),
            delivery_schema=builder.DeliverySchema(receiver.schema),
            **kwargs,
        )
        with self.database.session() as session:
            sub = subscriptions.create_subscription(
                session,
                self.resource_id,
                spec,
                policy_from_settings(self.settings),
                limits_from_settings(self.settings),
            )
        receiver.secrets = [sub.secret]
        return sub.id

    def wait_active(self, subscription_id: str, timeout: float = 15) -> None:
        def active() -> bool:
            with self.database.session() as session:
                return (
                    subscriptions.get_subscription(session, subscription_id).status
                    == SubscriptionStatus.ACTIVE
                )

        wait_until(active, timeout, what="subscription validation")

    def publish(self, n: int, event_type: str = builder.SMS_RECEIVED) -> list[str]:
        ids = []
        for i in range(n):
            with self.database.session() as session:
                subject, data = samples.sample_event(event_type, utcnow())
                ids.append(
                    service.publish(
                        session,
                        resource_id=self.resource_id,
                        event_type=event_type,
                        subject=subject,
                        data=data,
                        event_id=f"{self.name}-{event_type.rsplit('.', 1)[-1]}-{i}-{time.time_ns()}",
                    )
                )
        return ids

    def deliveries(self, subscription_id: str) -> list[Delivery]:
        with self.database.session() as session:
            return [d for d, _ in history.list_deliveries(session, subscription_id, limit=1000)]

    def close(self) -> None:
        self.database.dispose()


def cli(stack: Stack, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=stack.env(),
        cwd=str(REPO),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def scrape(port: int) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_both_schemas_end_to_end_with_cli(shared_stack: Stack) -> None:
    app = App(shared_stack, "e2e-app")
    tls = shared_stack.tls
    with running_receiver(tls) as eg, running_receiver(tls, schema="CloudEventSchemaV1_0") as ce:
        created = cli(
            shared_stack,
            "events",
            "subscribe",
            "--resource",
            "e2e-app",
            "--endpoint",
            eg.url,
            "--types",
            "SMSReceived,Microsoft.Communication.SMSDeliveryReportReceived,IncomingCall",
            "--schema",
            "eventgrid",
            "--json",
        )
        assert created["secret"].startswith("whsec_")
        assert created["status"] == "pendingValidation"
        eg.secrets = [created["secret"]]
        ce_id = app.subscribe(ce)
        app.wait_active(created["id"])
        app.wait_active(ce_id)
        assert len(eg.handshakes) == 1
        assert ce.handshakes == ["OPTIONS eventgrid.azure.net"]
        published = (
            app.publish(10)
            + app.publish(5, builder.SMS_DELIVERY_REPORT_RECEIVED)
            + app.publish(5, builder.INCOMING_CALL)
        )
        for receiver in (eg, ce):
            wait_until(lambda r=receiver: len(set(r.event_ids())) == len(published), 20, what="deliveries")
            assert receiver.errors == []
            assert sorted(set(receiver.event_ids())) == sorted(published)
        test_event = cli(shared_stack, "events", "test", created["id"], "--type", "IncomingCall", "--json")
        wait_until(lambda: test_event["eventId"] in eg.event_ids(), 15, what="test event")
        assert test_event["eventId"] not in ce.event_ids()
        listed = cli(shared_stack, "events", "list", "--resource", "e2e-app", "--json")
        assert {row["id"] for row in listed} == {created["id"], ce_id}
        metrics = scrape(shared_stack.metrics_port)
        assert metrics['trunkline_event_deliveries_total{outcome="delivered"}'] >= 2 * len(published)
        assert metrics['trunkline_event_delivery_attempts_total{result="2xx"}'] >= 2 * len(published)
        assert metrics["trunkline_event_delivery_lag_seconds_count"] >= 2 * len(published)
        assert (
            metrics['trunkline_events_published_total{event_type="Microsoft.Communication.IncomingCall"}']
            >= 5
        )
        assert metrics['trunkline_event_validations_total{result="validated"}'] == 2
        attempts = cli(shared_stack, "events", "attempts", created["id"], "--json")
        assert any(a["outcome"] == "validated" for a in attempts)
        assert all(a["statusCode"] == 200 for a in attempts)
    app.close()


def test_receiver_down_then_back_loses_nothing(shared_stack: Stack) -> None:
    app = App(shared_stack, "flaky-app")
    receiver = Receiver(shared_stack.tls)
    receiver.start()
    try:
        sub = app.subscribe(receiver)
        app.wait_active(sub)
        receiver.mode = "status:503"
        published = app.publish(15)
        wait_until(lambda: receiver.hits >= 15, 10, what="503 answers")
        receiver.stop()  # now connections are refused
        published += app.publish(15)
        time.sleep(1.5)
        receiver.mode = "ok"
        receiver.start()
        wait_until(lambda: set(receiver.event_ids()) >= set(published), 30, what="every event after recovery")
        time.sleep(0.5)
        ids = receiver.event_ids()
        assert receiver.errors == []
        assert set(ids) == set(published)
        # Any duplicate is a retry of the same event, carrying the same webhook-id.
        assert all(r.webhook_id == r.event_id for r in receiver.received)
        wait_until(
            lambda: {d.status for d in app.deliveries(sub)} == {DeliveryStatus.DELIVERED}, 5, what="records"
        )
        deliveries = app.deliveries(sub)
        assert max(d.attempts for d in deliveries) > 1
    finally:
        receiver.stop()
        app.close()


def test_4xx_dead_letters_without_retry_and_replay_delivers(shared_stack: Stack) -> None:
    app = App(shared_stack, "strict-app")
    with running_receiver(shared_stack.tls) as receiver:
        sub = app.subscribe(receiver)
        app.wait_active(sub)
        receiver.mode = "status:400"
        (event_id,) = app.publish(1)

        def dead() -> bool:
            return [d.status for d in app.deliveries(sub)] == [DeliveryStatus.DEAD_LETTERED]

        wait_until(dead, 15, what="dead letter")
        time.sleep(1.0)  # retries would have happened by now (base 0.2 s)
        assert receiver.hits == 1
        letters = cli(shared_stack, "events", "deliveries", sub, "--status", "deadLettered", "--json")
        assert [(d["eventId"], d["deadLetterReason"], d["lastStatusCode"]) for d in letters] == [
            (event_id, "NonRetryableStatusCode", 400)
        ]
        receiver.mode = "ok"
        replayed = cli(shared_stack, "events", "replay", sub, "--json")
        assert replayed == {"replayedEventIds": [event_id]}
        wait_until(lambda: receiver.event_ids() == [event_id], 15, what="replayed delivery")
        wait_until(
            lambda: [d.status for d in app.deliveries(sub)] == [DeliveryStatus.DELIVERED], 5, what="record"
        )
    app.close()


def test_sigkilled_worker_delivery_is_redone_by_another(private_stack: tuple[Stack, RedisServer]) -> None:
    """The broker's path (nodes that split the roles): a Celery worker killed in an attempt."""
    stack, _server = private_stack
    app = App(stack, "kill-app")
    with running_receiver(stack.tls) as receiver:
        sub = app.subscribe(receiver)
        dispatching = stack.start_worker("--no-deliveries", name="w-dispatch")
        first = stack.start_worker("--no-dispatcher", name="w-first")
        app.wait_active(sub)
        receiver.mode = "hang:60"
        (event_id,) = app.publish(1)
        wait_until(lambda: receiver.hits >= 1, 15, what="the first attempt to reach the receiver")
        stack.kill_worker(first)
        stack.kill_worker(dispatching)  # no scheduler left to send it again when the claim ends
        killed_at = time.monotonic()
        receiver.mode = "ok"
        receiver.hang_release.set()
        # No dispatcher in the second worker: only kombu's unacked-message restore can hand the
        # delivery over, which it must do about one visibility timeout (5 s) after the kill.
        stack.start_worker("--no-dispatcher", name="w-second")
        wait_until(lambda: event_id in receiver.event_ids(), 20, what="the redelivery")
        took = time.monotonic() - killed_at
        print(f"redelivered {took:.1f}s after the kill")
        assert took < 5 + 1 + 5, stack.logs()  # visibility timeout + restore interval + slack
        assert receiver.event_ids() == [event_id]
        wait_until(lambda: app.deliveries(sub)[0].status == DeliveryStatus.DELIVERED, 5, what="the record")
        (delivery,) = app.deliveries(sub)
        assert delivery.attempts == 1  # the killed attempt was never recorded; this is the redo
    app.close()


def test_sigkilled_local_delivery_is_redone_when_its_claim_ends(
    private_stack: tuple[Stack, RedisServer],
) -> None:
    """A worker running both roles sends on its own threads (no broker): killed in an attempt,
    its delivery is sent again by another node's scheduler once the claim's lease ends."""
    stack, _server = private_stack
    app = App(stack, "kill-local-app")
    with running_receiver(stack.tls) as receiver:
        sub = app.subscribe(receiver)
        first = stack.start_worker(name="w-first")
        app.wait_active(sub)
        receiver.mode = "hang:60"
        (event_id,) = app.publish(1)
        wait_until(lambda: receiver.hits >= 1, 15, what="the first attempt to reach the receiver")
        claimed = app.deliveries(sub)[0].claimed_until
        assert claimed is not None
        stack.kill_worker(first)
        receiver.mode = "ok"
        receiver.hang_release.set()
        stack.start_worker(name="w-second")
        wait_until(lambda: event_id in receiver.event_ids(), 20, what="the redelivery")
        assert utcnow() >= claimed  # not before the lease of the killed attempt ended
        assert receiver.event_ids() == [event_id]
        wait_until(lambda: app.deliveries(sub)[0].status == DeliveryStatus.DELIVERED, 5, what="the record")
        (delivery,) = app.deliveries(sub)
        assert delivery.attempts == 1
    app.close()


def test_a_worker_running_both_roles_delivers_with_the_broker_down(
    private_stack: tuple[Stack, RedisServer],
) -> None:
    """Its dispatcher's tasks run on its own threads: the broker is not on their path."""
    stack, server = private_stack
    app = App(stack, "no-broker-app")
    with running_receiver(stack.tls) as receiver:
        sub = app.subscribe(receiver)
        stack.start_worker(name="w-both")
        app.wait_active(sub)
        server.stop()
        try:
            published = app.publish(5)
            wait_until(lambda: set(receiver.event_ids()) == set(published), 15, what="deliveries")
        finally:
            server.start()
    app.close()


def test_redis_restart_loses_nothing(private_stack: tuple[Stack, RedisServer]) -> None:
    stack, server = private_stack
    app = App(stack, "restart-app")
    receiver = Receiver(stack.tls)
    receiver.start()
    try:
        sub = app.subscribe(receiver)
        stack.start_worker()
        app.wait_active(sub)
        receiver.stop()  # deliveries fail and wait for retries in the broker
        published = app.publish(10)
        wait_until(
            lambda: all(d.attempts >= 1 for d in app.deliveries(sub)) and len(app.deliveries(sub)) == 10,
            15,
            what="first failed attempts",
        )
        server.stop()  # everything queued in Redis is gone (no persistence)
        published += app.publish(10)  # written while the broker is down
        time.sleep(1.0)
        server.start()
        receiver.start()
        wait_until(lambda: set(receiver.event_ids()) >= set(published), 40, what="every event after restart")
        assert receiver.errors == []
        assert set(receiver.event_ids()) == set(published)
    finally:
        receiver.stop()
        app.close()


def test_concurrent_dispatchers_fan_out_each_event_once(postgres: Postgres, tmp_path: Path) -> None:
    """Several worker nodes run dispatchers; SKIP LOCKED keeps them off each other's rows."""
    import threading
    from datetime import timedelta

    stack = Stack(postgres.new_database(), "redis://unused", tmp_path, make_tls(tmp_path))
    app = App(stack, "fanout-app")
    with running_receiver(stack.tls) as receiver:
        sub = app.subscribe(receiver)
        with app.database.session() as session:
            subscriptions.get_subscription(session, sub).status = SubscriptionStatus.ACTIVE
        published = app.publish(300)
        found: list[list[str]] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                while True:
                    with app.database.session() as session:
                        got = fanout.dispatch_pending(session, utcnow(), timedelta(seconds=30), limit=7)
                    if not got.event_types:
                        return
                    found.append(got.delivery_ids)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        ids = [i for chunk in found for i in chunk]
        assert len(ids) == len(set(ids)) == len(published)
        assert len(found) > 4  # the work really was split
        assert {d.event_id for d in app.deliveries(sub)} == set(published)
    app.close()
