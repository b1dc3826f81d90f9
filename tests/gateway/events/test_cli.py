"""``trunkline events``: local webhooks, what to do when a worker may refuse one, tables."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.local_state import LocalGateway, write_local_gateway
from gateway.core.settings import get_settings, set_command_defaults

HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # no `trunkline up` of the machine's
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRUNKLINE_PUBLIC_ENDPOINT", "https://gw.example.test/")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["resources", "create", "my-app-with-a-long-name"])
    assert result.exit_code == 0, result.output
    yield tmp_path / "data"
    set_command_defaults({})


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _subscribe(endpoint: str = HOOK) -> Any:
    return _run(
        "events", "subscribe", "--resource", "my-app-with-a-long-name", "--endpoint", endpoint,
        "--types", "SMSReceived", "--json",
    )  # fmt: skip


def test_a_refused_endpoint_names_the_setting_that_allows_it(data_dir: Path) -> None:
    result = _subscribe()
    assert result.exit_code == 1
    words = " ".join(result.output.split())
    assert "loopback address (127.0.0.1)" in words
    assert "TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8" in words


def test_allowed_here_only_says_what_the_workers_need(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    result = _subscribe()
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    words = " ".join(result.output.split())
    assert "the workers (`trunkline worker`) need it too" in words
    assert f"`trunkline events validate {created['id']}`" in words
    # A public https endpoint needs no such note.
    assert "note:" not in " ".join(_subscribe("https://93.184.215.14/hook").output.split())


def _local_gateway(tmp_path: Path, networks: tuple[str, ...]) -> None:
    write_local_gateway(
        LocalGateway(
            pid=os.getpid(),
            data_dir=tmp_path / "data",
            endpoint="https://127.0.0.1:18443/",
            api_host="127.0.0.1",
            api_port=18443,
            webhook_allowed_networks=networks,
        )
    )


def test_local_mode_takes_loopback_webhooks(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUNKLINE_DATA_DIR")
    monkeypatch.delenv("TRUNKLINE_PUBLIC_ENDPOINT")
    _local_gateway(data_dir.parent, ("127.0.0.0/8", "::1/128"))
    result = _subscribe()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "pendingValidation"
    assert "note: using the gateway of `trunkline up`" in " ".join(result.output.split())
    assert "need it too" not in result.output


def test_a_running_gateway_that_refuses_it_is_named_with_the_fix(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _local_gateway(data_dir.parent, ("10.0.0.0/8",))
    monkeypatch.setenv("TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    result = _subscribe()
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert f"the running gateway (`trunkline up`, pid {os.getpid()}) does not allow this endpoint" in words
    assert "restart it with TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8" in words
    assert "trunkline events validate" in words


def test_list_names_the_resource_and_keeps_values_whole(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    created = json.loads(_subscribe().stdout)
    result = _run("events", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == [
        "id", "resource", "endpoint", "types", "schema", "events/batch", "batch KiB", "status",
    ]  # fmt: skip
    assert lines[1].split("\t") == [
        created["id"], "my-app-with-a-long-name", HOOK, "SMSReceived", "EventGridSchema", "1", "64",
        "pendingValidation",
    ]  # fmt: skip
    assert json.loads(_run("events", "list", "--json").stdout)[0]["id"] == created["id"]
    assert json.loads(_run("events", "show", created["id"], "--json").stdout)["id"] == created["id"]


def test_batching_is_set_by_subscribe_and_update_and_shown_by_list(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    result = _run(
        "events", "subscribe", "--resource", "my-app-with-a-long-name", "--endpoint", HOOK,
        "--types", "SMSReceived", "--max-events-per-batch", "100", "--preferred-batch-size-kb", "512",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert (created["maxEventsPerBatch"], created["preferredBatchSizeInKilobytes"]) == (100, 512)
    assert _run("events", "list").stdout.splitlines()[1].split("\t")[5:7] == ["100", "512"]
    updated = _run("events", "update", created["id"], "--max-events-per-batch", "5000", "--json")
    assert updated.exit_code == 0, updated.output
    shown = json.loads(updated.stdout)
    assert (shown["maxEventsPerBatch"], shown["preferredBatchSizeInKilobytes"]) == (5000, 512)
    refused = _run("events", "update", created["id"], "--max-events-per-batch", "5001")
    assert refused.exit_code != 0
    assert "maxEventsPerBatch must be between 1 and 5000" in " ".join(refused.output.split())
