"""``trunkline smpp``: what is wrong with an option, in sentences; tables whole in a pipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.settings import get_settings

DUMP = ("validation error", "errors.pydantic.dev", "Input should", "[0-9]", "^")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    return tmp_path


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _words(result: Any) -> str:
    words = " ".join(result.output.split())
    for fragment in DUMP:
        assert fragment not in words, words
    return words


def _add(name: str, *extra: str) -> Any:
    return _run(
        "smpp", "add", name, "--host", "smsc.example", "--port", "2775", "--system-id", "id",
        "--password", "pw", *extra,
    )  # fmt: skip


def test_smpp_add_with_a_bad_port_and_bind_mode(data_dir: Path) -> None:
    result = _run(
        "smpp", "add", "c1", "--host", "h", "--port", "99999", "--system-id", "s", "--password", "p",
        "--bind-mode", "bogus",
    )  # fmt: skip
    assert result.exit_code == 2
    assert _words(result) == (
        "error: The port must be less than or equal to 65535 (got 99999). The bind mode must be one of "
        "'transceiver' or 'transmitter+receiver', not 'bogus'."
    )


def test_smpp_add_names_options_by_their_flag(data_dir: Path) -> None:
    result = _add("c1", "--window", "0")
    assert result.exit_code == 2
    assert "The window (--window) must be greater than or equal to 1 (got 0)." in _words(result)


def test_route_add_with_a_prefix_without_plus(data_dir: Path) -> None:
    result = _run("smpp", "route", "add", "--prefix", "1", "--connection", "c1")
    assert result.exit_code == 2
    assert _words(result).startswith("error: The prefix '1' must be '+' followed by up to 15 digits")


def test_lists_are_whole_in_a_pipe_and_json(data_dir: Path) -> None:
    long_name = "carrier-with-a-rather-long-connection-name"
    assert _add(long_name).exit_code == 0
    assert _run("smpp", "route", "add", "--prefix", "+44", "--connection", long_name).exit_code == 0
    listed = _run("smpp", "list").stdout.splitlines()
    assert listed[0].split("\t")[0] == "name"
    assert listed[1].split("\t")[:3] == [long_name, "smsc.example", "2775"]
    assert _run("smpp", "route", "list").stdout.splitlines()[1].split("\t") == ["+44", long_name, "0"]
    assert json.loads(_run("smpp", "list", "--json").stdout)[0]["name"] == long_name
    assert json.loads(_run("smpp", "route", "list", "--json").stdout)[0]["prefix"] == "+44"
    assert isinstance(json.loads(_run("smpp", "stats", "--json").stdout), dict)
