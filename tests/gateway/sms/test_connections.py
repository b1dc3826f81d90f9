"""The operator's SMPP connections and routes (gateway/sms/connections.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.db import Database
from gateway.core.errors import AcsError
from gateway.sms import connections
from gateway.sms.connections import AppliedConfig


def test_config_file_creates_connections_and_routes(database: Database, tmp_path: Path) -> None:
    path = tmp_path / "smpp.toml"
    path.write_text(
        '[[connections]]\nname = "a"\nhost = "127.0.0.1"\nport = 2775\nsystem_id = "u"\npassword = "p"\n'
        'window_size = 20\n[[routes]]\nprefix = "+1"\nconnection = "a"\n'
    )
    with database.session() as session:
        assert connections.apply_config_file(session, path) == AppliedConfig(connections=1, routes=1)
    path.write_text(path.read_text().replace("window_size = 20", "window_size = 30"))
    with database.session() as session:
        assert connections.apply_config_file(session, path) == AppliedConfig(connections=1, routes=0)
        assert connections.get_connection(session, "a").window_size == 30
        assert connections.list_routes(session) == [{"prefix": "+1", "connection": "a", "priority": 0}]
    path.write_text('[[connections]]\nname = "b"\n')
    with database.session() as session, pytest.raises(AcsError):
        connections.apply_config_file(session, path)
