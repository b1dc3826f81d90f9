"""``trunkline up`` (gateway/supervisor.py): its banner, its children's environment and the state it
leaves for other shells; the key it keeps to encrypt stored secrets, and its encryption of what an
earlier version stored in plain text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.cli import app
from gateway.core.db import Database
from gateway.core.local_state import read_local_gateway, write_local_gateway
from gateway.core.migrate import upgrade
from gateway.core.secrets import is_sealed, read_key_files
from gateway.core.settings import Settings, get_settings, set_command_defaults
from gateway.resources import service
from gateway.supervisor import local_secrets_key, prepare_local


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A HOME of the test's own; the default data dir is under it."""
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    yield tmp_path / "home" / ".local" / "share" / "trunkline"
    set_command_defaults({})


def _line(banner: list[str], key: str) -> str:
    return next(line for line in banner if line.startswith(key)).split(":", 1)[1].strip()


def test_local_mode_allows_loopback_webhooks_and_says_so(home: Path) -> None:
    launch = prepare_local("127.0.0.1", 18443, {})
    assert launch.env["TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS"] == "127.0.0.0/8,::1/128"
    webhooks = _line(launch.banner, "webhooks:")
    assert "loopback allowed" in webhooks
    assert "TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8,::1/128" in webhooks
    assert launch.gateway.webhook_allowed_networks == ("127.0.0.0/8", "::1/128")


def test_an_explicit_network_setting_wins(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8")
    launch = prepare_local("127.0.0.1", 18443, {"TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8"})
    assert launch.env["TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS"] == "10.0.0.0/8"
    assert "10.0.0.0/8" in _line(launch.banner, "webhooks:")


def _create(name: str) -> str:
    result = CliRunner().invoke(app, ["resources", "create", name, "--json"])
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_next_line_and_connection_strings_name_the_port_on_every_start(home: Path) -> None:
    first = prepare_local("127.0.0.1", 18443, {})
    write_local_gateway(first.gateway)
    assert _line(first.banner, "next:") == "trunkline resources create my-app --json"
    assert str(home / "local-gateway.json") in _line(first.banner, "state file:")
    # The README's next step, from another shell without TRUNKLINE_DATA_DIR.
    assert '"connectionString": "endpoint=https://127.0.0.1:18443/;' in _create("my-app")

    second = prepare_local("127.0.0.1", 18443, {})
    write_local_gateway(second.gateway)
    assert _line(second.banner, "next:") == "trunkline resources show my-app --json"
    assert not any(line.startswith("note:") for line in second.banner)
    assert '"connectionString": "endpoint=https://127.0.0.1:18443/;' in _create("other-app")

    # A start on another port: the new resources name it; the old ones are pointed out.
    third = prepare_local("127.0.0.1", 19443, {})
    write_local_gateway(third.gateway)
    note = _line(third.banner, "note:")
    assert "my-app, other-app name another endpoint" in note
    assert "https://127.0.0.1:19443/" in note
    assert '"connectionString": "endpoint=https://127.0.0.1:19443/;' in _create("third-app")
    assert read_local_gateway() == third.gateway
    assert get_settings().api_port == 19443


def test_without_home_the_banner_says_where_the_data_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "missing"))
    monkeypatch.chdir(tmp_path)
    launch = prepare_local("127.0.0.1", 18443, {})
    assert _line(launch.banner, "data dir:") == str(tmp_path / "trunkline-data")
    assert any("HOME is not set" in line for line in launch.banner)
    assert not any(line.startswith("state file:") for line in launch.banner)
    next_line = _line(launch.banner, "next:")
    assert next_line.startswith(f"TRUNKLINE_DATA_DIR={tmp_path / 'trunkline-data'} TRUNKLINE_API_PORT=18443 ")


def test_up_makes_a_key_and_encrypts_plain_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUNKLINE_SECRETS_KEYS")
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path))  # as up's children get it
    get_settings.cache_clear()
    settings = Settings()
    database = Database(settings.effective_database_url)
    try:
        upgrade(database.engine)
        with database.engine.begin() as connection:  # as an earlier version stored them
            connection.execute(
                text(
                    "INSERT INTO resources (id, name, endpoint, endpoint_host, primary_key, secondary_key, "
                    "created_at, keys_rotated_at) VALUES ('r1', 'old', 'https://x/', 'x', 'a2V5MQ==', "
                    "'a2V5Mg==', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )

        local_secrets_key(settings)
        [key] = read_key_files(settings.effective_secrets_keys_dir)
        with database.engine.connect() as connection:
            stored = connection.execute(text("SELECT primary_key, secondary_key FROM resources")).one()
        assert all(is_sealed(value) and key.kid in value for value in stored)
        with database.session() as session:
            resource = service.get_resource(session, "old")
            assert (resource.primary_key, resource.secondary_key) == ("a2V5MQ==", "a2V5Mg==")

        local_secrets_key(settings)  # again: the same key, nothing left to encrypt
        assert read_key_files(settings.effective_secrets_keys_dir) == [key]
    finally:
        database.dispose()
