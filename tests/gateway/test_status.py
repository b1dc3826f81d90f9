"""gateway.status: what ``trunkline status`` and the console show, read from both databases."""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.events.lifecycle import DeliveryStatus
from gateway.events.models import Delivery
from gateway.sms.models import SmppBindStatus, SmppConnection, SmsMessage
from gateway.status import ProcessState, gather_status, port_answers
from tests.gateway.events.inprocess import LOOPBACK, activate, sms, subscribe
from tests.support.acs import admin_headers


def _message(resource_id: str, number: int, state: str, age: timedelta) -> SmsMessage:
    return SmsMessage(
        id=f"Outgoing_status_{number}",
        resource_id=resource_id,
        from_number="+15550000001",
        to_number="+15550000002",
        text="hello",
        segment_count=1,
        data_coding=0,
        delivery_report_timeout_seconds=60,
        state=state,
        created_at=utcnow() - age,
    )


def seed(database: Database, settings: Settings, resource_id: str) -> None:
    with database.session() as session:
        session.add_all(
            [
                _message(resource_id, 1, "queued", timedelta(seconds=90)),
                _message(resource_id, 2, "queued", timedelta(seconds=10)),
                _message(resource_id, 3, "delivered", timedelta(minutes=1)),
                _message(resource_id, 4, "delivered", timedelta(minutes=2)),
                _message(resource_id, 5, "failed", timedelta(minutes=3)),
                _message(resource_id, 6, "delivered", timedelta(minutes=30)),  # outside the window
            ]
        )
        connection = SmppConnection(name="smsc-a", host="127.0.0.1", port=2775, system_id="u", password="p")
        session.add(connection)
        session.flush()
        now = utcnow()
        session.add(
            SmppBindStatus(
                process="smpp-1",
                connection_id=connection.id,
                health="failing",
                state="closed",
                since=now - timedelta(seconds=20),
                last_error="ESME_RBINDFAIL",
                window_in_use=0,
                sent_last_minute=0,
                updated_at=now,
            )
        )
    loopback = Settings(
        data_dir=settings.data_dir, database_url=database.url, webhook_allowed_networks=LOOPBACK
    )
    sub = subscribe(database, loopback, resource_id, "https://127.0.0.1:9/hook")
    activate(database, sub.id)
    events = [sms(database, resource_id, to=f"+1555000200{i}") for i in range(3)]
    with database.session() as session:
        for index, event_id in enumerate(events):
            session.add(
                Delivery(
                    event_id=event_id,
                    subscription_id=sub.id,
                    resource_id=resource_id,
                    status=DeliveryStatus.DEAD_LETTERED if index else DeliveryStatus.PENDING,
                    next_attempt_at=utcnow(),
                    expires_at=utcnow() + timedelta(hours=1),
                )
            )


def test_gathers_queue_rates_binds_and_webhooks(
    client: TestClient, database: Database, settings: Settings, tmp_path: Path
) -> None:
    resource_id = client.post("/admin/resources", json={"name": "status"}, headers=admin_headers()).json()[
        "id"
    ]
    seed(database, settings, resource_id)
    with database.session() as session:
        data: dict[str, Any] = gather_status(session, settings, utcnow())
    assert set(data) == {
        "generatedAt",
        "processes",
        "binds",
        "smsQueue",
        "messagesPerMinute",
        "webhooks",
        "sipWorkers",
        "database",
    }
    assert data["smsQueue"]["queued"] == 2
    assert 85 <= data["smsQueue"]["oldestQueuedAgeSeconds"] <= 120
    # Five minutes' worth: 2 queued, 2 delivered, 1 failed (the 30-minute-old one left out).
    assert data["messagesPerMinute"] == {"delivered": 0.4, "failed": 0.2, "queued": 0.4}
    assert data["webhooks"]["pending"] == 1
    assert data["webhooks"]["deadLettered"] == 2
    (bind,) = data["binds"]
    assert bind["connection"] == "smsc-a"
    assert bind["state"] == "failing"
    assert bind["lastError"] == "ESME_RBINDFAIL"
    processes = {p["role"]: p for p in data["processes"]}
    assert set(processes) == {"api", "worker", "smpp", "sip", "up"}
    assert processes["smpp"]["state"] == ProcessState.UP  # its bind row is fresh
    assert processes["up"]["state"] == ProcessState.DOWN
    assert data["sipWorkers"] == []
    database_status = data["database"]
    assert database_status["backend"] in ("sqlite", "postgresql")
    if database_status["backend"] == "sqlite":
        assert database_status["autovacuum"] is None
    else:
        assert isinstance(database_status["autovacuum"], bool)


def test_port_answers_only_when_something_listens() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_answers("127.0.0.1", port)
    assert not port_answers("127.0.0.1", port)
