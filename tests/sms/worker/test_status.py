"""Each bind's state as the operator sees it: published by the SMPP process, read by
``trunkline smpp list`` and ``GET /admin/smpp/connections`` (other processes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.db import Database, utcnow
from gateway.core.settings import get_settings
from gateway.sms.bind_status import connections_with_status
from tests.sms.worker.harness import Harness
from tests.support.acs import admin_headers
from tests.support.smsc import SmscProcess
from tests.support.waiting import wait_until


def by_name(database: Database) -> dict[str, dict[str, Any]]:
    with database.session() as session:
        return {row["name"]: row for row in connections_with_status(session, utcnow())}


def test_a_wrong_password_shows_failing_and_a_good_one_bound(
    harness: Harness,
    smsc: SmscProcess,
    client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert by_name(harness.database) == {}
    harness.connect("good", smsc, prefix="+1")
    harness.connect("wrong", smsc, prefix="+44", password="nope")
    harness.start()
    statuses = wait_until(
        lambda: (
            (s := by_name(harness.database))
            and s["good"]["state"] == "bound"
            and s["wrong"]["state"] == "failing"
            and s
        ),
        what="both binds' state published",
    )
    good, wrong = statuses["good"], statuses["wrong"]
    assert wrong["lastError"] == "ESME_RBINDFAIL"
    assert good["lastError"] is None
    assert good["windowInUse"] == 0
    assert good["stateSince"]
    assert [b["state"] for b in good["binds"]] == ["bound"]
    assert not good["binds"][0]["stale"]

    message_id = harness.send("counted")  # to a +1 number: the good bind
    wait_until(lambda: by_name(harness.database)["good"]["sentLastMinute"] == 1, what="one sent")
    assert harness.state(message_id) in ("submitted", "delivered")

    listed = client.get("/admin/smpp/connections", headers=admin_headers()).json()["value"]
    assert {row["name"]: (row["state"], row["lastError"]) for row in listed} == {
        "good": ("bound", None),
        "wrong": ("failing", "ESME_RBINDFAIL"),
    }

    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("TRUNKLINE_DATABASE_URL", harness.database.url)
    get_settings.cache_clear()
    try:
        as_json = CliRunner().invoke(app, ["smpp", "list", "--json"])
        table = CliRunner().invoke(app, ["smpp", "list"])
    finally:
        get_settings.cache_clear()
    assert as_json.exit_code == 0, as_json.output
    assert {row["name"]: row["state"] for row in json.loads(as_json.stdout)} == {
        "good": "bound",
        "wrong": "failing",
    }
    lines = [line.split("\t") for line in table.stdout.splitlines()]
    header = lines[0]
    rows = {line[0]: dict(zip(header, line, strict=True)) for line in lines[1:]}
    assert rows["wrong"]["state"] == "failing"
    assert rows["wrong"]["last error"] == "ESME_RBINDFAIL"
    assert rows["good"]["state"] == "bound"
    assert rows["good"]["sent last min"] == "1"

    harness.stop()  # a clean stop takes its binds' rows with it: nobody holds them now
    assert {name: row["state"] for name, row in by_name(harness.database).items()} == {
        "good": "unknown",
        "wrong": "unknown",
    }
