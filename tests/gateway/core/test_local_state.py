"""gateway.core.local_state: commands of another shell find the gateway ``trunkline up`` runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.local_state import (
    LocalGateway,
    command_target,
    read_local_gateway,
    state_file,
    use_local_gateway,
    write_local_gateway,
)
from gateway.core.settings import default_data_dir, get_settings, set_command_defaults


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    yield tmp_path / "xdg" / "trunkline"
    set_command_defaults({})


def _gateway(data_dir: Path, port: int = 18443, pid: int | None = None) -> LocalGateway:
    return LocalGateway(
        pid=os.getpid() if pid is None else pid,
        data_dir=data_dir,
        endpoint=f"https://127.0.0.1:{port}/",
        api_host="127.0.0.1",
        api_port=port,
        webhook_allowed_networks=("127.0.0.0/8", "::1/128"),
    )


def test_state_round_trips_in_the_default_data_dir(xdg: Path, tmp_path: Path) -> None:
    assert read_local_gateway() is None
    gateway = _gateway(tmp_path / "elsewhere")
    written = write_local_gateway(gateway)
    assert written == state_file() == xdg / "local-gateway.json"
    found = read_local_gateway()
    assert found == gateway
    assert found.running


def test_a_command_without_a_data_dir_uses_the_running_gateway_and_says_so(xdg: Path, tmp_path: Path) -> None:
    write_local_gateway(_gateway(tmp_path / "elsewhere"))
    note = use_local_gateway({})
    settings = get_settings()
    assert settings.data_dir == (tmp_path / "elsewhere").resolve()
    assert settings.effective_public_endpoint == "https://127.0.0.1:18443/"
    assert settings.webhook_allowed_networks == ["127.0.0.0/8", "::1/128"]
    assert note is not None
    assert str(tmp_path / "elsewhere") in note
    assert "https://127.0.0.1:18443/" in note
    assert f"pid {os.getpid()}" in note


def test_the_environment_wins(xdg: Path, tmp_path: Path) -> None:
    write_local_gateway(_gateway(tmp_path / "elsewhere"))
    assert command_target({"TRUNKLINE_DATA_DIR": str(tmp_path)}).values == {}
    assert command_target({"TRUNKLINE_DATABASE_URL": "postgresql://x/y"}).values == {}
    values = command_target({"TRUNKLINE_PUBLIC_ENDPOINT": "https://gw.example/"}).values
    assert "public_endpoint" not in values
    assert values["data_dir"] == tmp_path / "elsewhere"


def test_the_usual_gateway_needs_no_note(xdg: Path) -> None:
    write_local_gateway(_gateway(default_data_dir(), port=8443))
    target = command_target({})
    assert target.note is None
    assert target.values["api_port"] == 8443


def test_a_stopped_gateway_is_named_as_such(xdg: Path, tmp_path: Path) -> None:
    write_local_gateway(_gateway(tmp_path / "elsewhere", pid=2**22 + 12345))
    note = command_target({}).note
    assert note is not None
    assert "not running now" in note


def test_without_home_the_data_dir_is_said_and_no_state_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "missing"))
    monkeypatch.chdir(tmp_path)
    assert state_file() is None
    assert write_local_gateway(_gateway(tmp_path)) is None
    note = command_target({}).note
    assert note is not None
    assert "HOME is not set or not a writable directory" in note
    assert str(tmp_path / "trunkline-data") in note
    assert "TRUNKLINE_DATA_DIR" in note
    assert not (tmp_path / "trunkline-data").exists()
