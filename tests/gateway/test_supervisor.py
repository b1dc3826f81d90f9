"""``trunkline up`` (gateway/supervisor.py): it keeps a key to encrypt stored secrets in the data dir
and encrypts what an earlier version stored in plain text."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.core.db import Database
from gateway.core.migrate import upgrade
from gateway.core.secrets import is_sealed, read_key_files
from gateway.core.settings import Settings, get_settings
from gateway.resources import service
from gateway.supervisor import local_secrets_key


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
