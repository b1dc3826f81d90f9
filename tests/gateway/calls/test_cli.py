"""``trunkline sip trunk|route|apply`` against a temporary data directory (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.settings import get_settings

EXAMPLE = Path(__file__).resolve().parents[3] / "infra" / "sip.toml.example"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    assert CliRunner().invoke(app, ["carriers", "add", "acme", "--kind", "sip"]).exit_code == 0
    return tmp_path


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _ok(*args: str) -> str:
    result = _run(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.stdout)


def test_trunk_add_list_remove(data_dir: Path) -> None:
    added = json.loads(
        _ok(
            "sip", "trunk", "add", "t1", "--carrier", "acme", "--host", "sip.example.net", "--port", "5061",
            "--transport", "tls", "--allow", "192.0.2.0/24", "--allow", "2001:db8::/32", "--username", "u",
            "--password", "p", "--register", "--codecs", "PCMA,pcmu", "--srtp", "mandatory",
            "--dtmf", "inband", "--json",
        )
    )  # fmt: skip
    assert added["dtmf"] == "inband"
    assert added["allow"] == ["192.0.2.0/24", "2001:db8::/32"]
    assert added["codecs"] == ["PCMA", "PCMU"]
    assert (added["transport"], added["port"], added["srtp"], added["register"]) == (
        "tls",
        5061,
        "mandatory",
        True,
    )
    assert "added SIP trunk t2" in _ok(
        "sip", "trunk", "add", "t2", "--carrier", "acme", "--host", "192.0.2.7"
    )
    listed = json.loads(_ok("sip", "trunk", "list", "--json"))
    assert [(t["name"], t["dtmf"]) for t in listed] == [("t1", "inband"), ("t2", "auto")]
    assert "t1" in _ok("sip", "trunk", "list")
    assert "removed t1" in _ok("sip", "trunk", "remove", "t1")
    gone = _run("sip", "trunk", "remove", "t1")
    assert gone.exit_code == 1
    assert "There is no SIP trunk named 't1'." in gone.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "70000"], "The port must be less than or equal to 65535 (got 70000)."),
        (["--transport", "sctp"], "The transport must be one of 'udp', 'tcp' or 'tls', not 'sctp'."),
        (["--username", "u"], "Digest credentials need both a username and a password."),
        (["--allow", "nonsense"], "'nonsense' is not a network in CIDR notation"),
        (["--codecs", "G729"], "'G729' is not a codec the SIP side offers"),
    ],
)
def test_trunk_add_says_what_is_wrong(data_dir: Path, args: list[str], words: str) -> None:
    result = _run("sip", "trunk", "add", "t", "--carrier", "acme", "--host", "h.example", *args)
    assert result.exit_code == 2
    assert words in " ".join(result.output.split())
    assert "validation error" not in result.output  # no pydantic dump


def test_routes_in_failover_order(data_dir: Path) -> None:
    for name in ("a", "b", "c"):
        _ok("sip", "trunk", "add", name, "--carrier", "acme", "--host", f"{name}.example")
    assert "route +1 -> b, a" in _ok("sip", "route", "add", "--prefix", "+1", "--trunk", "b", "--trunk", "a")
    _ok("sip", "route", "add", "--prefix", "+1", "--trunk", "c")
    assert json.loads(_ok("sip", "route", "list", "--json")) == [{"prefix": "+1", "trunks": ["b", "a", "c"]}]
    _ok("sip", "route", "remove", "--prefix", "+1", "--trunk", "a")
    assert "b, c" in _ok("sip", "route", "list")
    bad = _run("sip", "route", "add", "--prefix", "44", "--trunk", "a")
    assert bad.exit_code == 2
    assert "The prefix '44' must be '+' followed by up to 15 digits" in " ".join(bad.output.split())
    _ok("sip", "route", "remove", "--prefix", "+1")
    assert json.loads(_ok("sip", "route", "list", "--json")) == []


def test_apply(data_dir: Path, tmp_path: Path) -> None:
    assert "2 trunks applied, 2 routes set" in _ok("sip", "apply", str(EXAMPLE))
    bad = tmp_path / "bad.toml"
    bad.write_text("[[trunks]]\nname = 'x'\n")
    result = _run("sip", "apply", str(bad))
    assert result.exit_code == 1
    assert "The carrier is required. The host is required." in " ".join(result.output.split())


def test_sip_process_takes_the_idle_poll_and_the_media_poll_period(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "sip.control.process.run_sip_process", lambda settings, **options: started.append(options)
    )
    _ok("sip", "--workers", "3", "--poll-ms", "50", "--media-poll-seconds", "10")
    assert started[0]["workers"] == 3
    assert (started[0]["poll_ms"], started[0]["media_poll_seconds"]) == (50, 10.0)
    _ok("sip")
    assert started[1]["poll_ms"] == 200  # the default the idle-CPU measurement chose (config.py)
    for bad in (["--poll-ms", "0"], ["--poll-ms", "500"], ["--media-poll-seconds", "0.1"]):
        result = _run("sip", *bad)
        assert result.exit_code == 2, (bad, result.output)
