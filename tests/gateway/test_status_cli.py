"""``trunkline status``: the JSON's exact keys, the screen's parts, ``--watch`` refreshing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from gateway import status_cli
from gateway.cli import app
from gateway.core.settings import get_settings


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("TRUNKLINE_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.mark.usefixtures("cli_env")
def test_json_has_exactly_these_keys() -> None:
    result = run("status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
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
    assert set(data["smsQueue"]) == {"queued", "oldestQueuedAgeSeconds"}
    assert set(data["webhooks"]) == {"outbox", "pending", "deadLettered"}
    assert [p["role"] for p in data["processes"]] == ["api", "worker", "smpp", "sip", "up"]
    assert all(set(p) == {"role", "state", "detail"} for p in data["processes"])
    assert data["smsQueue"] == {"queued": 0, "oldestQueuedAgeSeconds": None}


@pytest.mark.usefixtures("cli_env")
def test_screen_names_every_part() -> None:
    result = run("status")
    assert result.exit_code == 0, result.output
    for title in ("Processes", "SMPP binds", "Queues", "Messages per minute", "SIP workers"):
        assert title in result.stdout
    for role in ("api", "worker", "smpp", "sip", "up"):
        assert role in result.stdout


@pytest.mark.parametrize("autovacuum", [True, False, None])
def test_the_screen_warns_when_autovacuum_is_off(autovacuum: bool | None) -> None:
    data = {
        "generatedAt": "2026-12-07T12:00:00Z",
        "processes": [],
        "binds": [],
        "smsQueue": {"queued": 0, "oldestQueuedAgeSeconds": None},
        "messagesPerMinute": {},
        "webhooks": {"outbox": 0, "pending": 0, "deadLettered": 0},
        "sipWorkers": [],
        "database": {
            "backend": "postgresql" if autovacuum is not None else "sqlite",
            "autovacuum": autovacuum,
        },
    }
    console = Console(width=200, record=True)
    console.print(status_cli.render(data))
    assert ("autovacuum is off" in console.export_text()) is (autovacuum is False)


@pytest.mark.usefixtures("cli_env")
def test_watch_refreshes_until_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("gateway.status_cli.time.sleep", sleep)
    readings: list[int] = []
    collect = status_cli.collect

    def counted() -> dict[str, Any]:
        readings.append(1)
        return collect()

    monkeypatch.setattr(status_cli, "collect", counted)
    result = run("status", "--watch", "0.5")
    assert result.exit_code == 0, result.output
    assert sleeps == [0.5, 0.5]
    assert len(readings) == 2  # the first screen and one refresh
    sleeps.clear()
    assert run("status", "--watch").exit_code == 0
    assert sleeps[0] == status_cli.DEFAULT_WATCH_SECONDS


@pytest.mark.usefixtures("cli_env")
def test_seconds_without_watch_is_refused_with_a_sentence() -> None:
    result = run("status", "3")
    assert result.exit_code == 1
    assert "--watch SECONDS" in " ".join(result.output.split())
