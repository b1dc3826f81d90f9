"""``trunkline sip status`` reads the status file that ``run_sip`` rewrites (no SIP process needed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.settings import get_settings
from sip.worker.status import PoolStatus, WorkerStatus, write

WORKERS = (
    WorkerStatus(index=0, pid=4242, sip_port=15070, up=True, calls=3, free=1, restarts=0),
    WorkerStatus(index=1, pid=None, sip_port=15071, up=False, calls=0, free=0, restarts=2),
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _write(path: Path, written_at: float) -> None:
    write(path, PoolStatus(written_at, "kamailio", "127.0.0.1:5060", WORKERS))


def test_table_shows_each_worker_and_the_totals(data_dir: Path) -> None:
    _write(get_settings().sip_status_file, time.time())
    result = CliRunner().invoke(app, ["sip", "status"])
    assert result.exit_code == 0, result.output
    # Piped (not a terminal): plain tab-separated rows on stdout, the totals on stderr.
    assert [line.split("\t") for line in result.stdout.splitlines()] == [
        ["worker", "pid", "SIP port", "up", "calls", "free", "restarts"],
        ["0", "4242", "15070", "yes", "3", "1", "0"],
        ["1", "-", "15071", "no", "0", "0", "2"],
    ]
    assert "2 workers, 3 calls, 1 free slots; edge kamailio, trunks send to 127.0.0.1:5060" in result.stderr


def test_json(data_dir: Path) -> None:
    _write(get_settings().sip_status_file, time.time())
    result = CliRunner().invoke(app, ["sip", "status", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["calls"], body["free"], body["stale"], body["edge"]) == (3, 1, False, "kamailio")
    assert body["workers"][0] == {
        "index": 0, "pid": 4242, "sip_port": 15070, "up": True, "calls": 3, "free": 1, "restarts": 0,
    }  # fmt: skip
    assert body["workers"][1]["pid"] is None


def test_a_stale_file_is_shown_and_exits_1(data_dir: Path) -> None:
    _write(get_settings().sip_status_file, time.time() - 60)
    result = CliRunner().invoke(app, ["sip", "status", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["stale"] is True
    assert "not running" in result.stderr


def test_file_option(data_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "other" / "status.json"
    elsewhere.parent.mkdir()
    _write(elsewhere, time.time())
    result = CliRunner().invoke(app, ["sip", "status", "--json", "--file", str(elsewhere)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["address"] == "127.0.0.1:5060"


def test_no_status_file(data_dir: Path) -> None:
    result = CliRunner().invoke(app, ["sip", "status"])
    assert result.exit_code == 1
    assert "is `trunkline sip` running?" in " ".join(result.stderr.split())  # rich wraps long paths


def test_unreadable_status_file(data_dir: Path) -> None:
    get_settings().sip_status_file.write_text("{}")
    result = CliRunner().invoke(app, ["sip", "status"])
    assert result.exit_code == 1
    assert "cannot read the SIP status" in result.stderr
