"""A message's whole history for the operator: ``trunkline sms show``/``list`` and
``GET /admin/sms/messages`` (accepted, each part submitted with its connection and SMSC id,
each receipt, the report event and its deliveries)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings, get_settings
from gateway.events import fanout
from gateway.sms.history import parse_since
from tests.gateway.events.inprocess import LOOPBACK, activate, subscribe
from tests.sms.worker.harness import SENDER, TO, Harness
from tests.support.acs import admin_headers
from tests.support.smsc import SmscProcess
from tests.support.waiting import wait_until

from .support import give_number


@pytest.fixture
def harness(database: Database, tmp_path: Path, client: Any) -> Iterator[Harness]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database.url,
        sms_claim_lease_seconds=6,
        webhook_allowed_networks=LOOPBACK,
    )
    resource_id = client.post("/admin/resources", json={"name": "sms-app"}, headers=admin_headers()).json()[
        "id"
    ]
    give_number(database, resource_id, SENDER)
    h = Harness(database, settings, resource_id)
    yield h
    h.stop()


@pytest.fixture
def cli_env(harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("TRUNKLINE_DATABASE_URL", harness.database.url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_a_delivered_message_shows_its_whole_history(
    harness: Harness, smsc: SmscProcess, client: Any, cli_env: None
) -> None:
    smsc.configure(receipts="immediate")
    harness.connect("op1", smsc)
    harness.start()
    subscription = subscribe(
        harness.database, harness.settings, harness.resource_id, "http://127.0.0.1:9/sms"
    )
    activate(harness.database, subscription.id)
    message_id = harness.send("x" * 200)  # two parts
    other = harness.send("another", to="+14255550124")
    wait_until(lambda: harness.state(message_id) == "delivered", what="delivered")
    wait_until(lambda: harness.state(other) == "delivered", what="delivered")
    with harness.database.session() as session:
        assert fanout.dispatch_pending(session, utcnow(), timedelta(seconds=30)).delivery_ids

    shown = client.get(f"/admin/sms/messages/{message_id}", headers=admin_headers())
    assert shown.status_code == 200, shown.text
    data = shown.json()
    assert (data["status"], data["deliveryStatus"], data["connection"]) == ("delivered", "Delivered", "op1")
    assert [(p["part"], p["connection"], p["receiptState"]) for p in data["parts"]] == [
        (1, "op1", "DELIVERED"),
        (2, "op1", "DELIVERED"),
    ]
    assert all(p["smscMessageId"] for p in data["parts"])
    steps = [step["step"] for step in data["history"]]
    assert steps[0] == "accepted"
    assert steps.count("submitted") == 2
    assert steps.count("receipt") == 2
    assert "delivered" in steps
    [event] = data["events"]
    assert event["type"] == "Microsoft.Communication.SMSDeliveryReportReceived"
    assert [d["subscriptionId"] for d in event["deliveries"]] == [subscription.id]
    assert {"event", "delivery"} <= set(steps)
    assert client.get("/admin/sms/messages/nope", headers=admin_headers()).status_code == 404
    assert client.get(f"/admin/sms/messages/{message_id}").status_code == 401

    listed = client.get("/admin/sms/messages", params={"to": TO}, headers=admin_headers()).json()["value"]
    assert [row["id"] for row in listed] == [message_id]
    everything = client.get(
        "/admin/sms/messages",
        params={"status": "delivered", "since": "10m", "from": SENDER},
        headers=admin_headers(),
    ).json()["value"]
    assert {row["id"] for row in everything} == {message_id, other}
    assert (
        client.get("/admin/sms/messages", params={"status": "bogus"}, headers=admin_headers()).status_code
        == 400
    )

    as_json = run("sms", "show", message_id, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["parts"] == data["parts"]
    table = run("sms", "show", message_id)
    assert table.exit_code == 0, table.output
    assert "status: delivered" in table.stdout
    assert "submitted" in table.stdout
    assert "smscMessageId" in table.stdout
    listed_cli = run("sms", "list", "--to", TO, "--json")
    assert [row["id"] for row in json.loads(listed_cli.stdout)] == [message_id]
    rows = run("sms", "list", "--status", "delivered", "--since", "1h").stdout.splitlines()
    assert rows[0].split("\t")[0] == "id"
    assert {line.split("\t")[0] for line in rows[1:]} == {message_id, other}
    assert run("sms", "list", "--since", "2026-12-06T").exit_code == 2
    missing = run("sms", "show", "Outgoing_nope")
    assert missing.exit_code == 1
    assert "No message with id 'Outgoing_nope'." in missing.output


def test_since_takes_a_duration_or_a_time() -> None:
    now = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d", now) == now - timedelta(days=1)
    assert parse_since("2026-12-06T17:00:00Z", now) == datetime(2026, 12, 6, 17, 0, tzinfo=UTC)
