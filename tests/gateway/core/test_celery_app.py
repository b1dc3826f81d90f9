"""The Celery app's broker options: everything of the local queue stays in the data dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway.core.broker import local_broker_dir
from gateway.core.celery_app import broker_options, create_celery
from gateway.core.settings import Settings


def test_local_queue_keeps_all_its_folders_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    options = broker_options(settings)
    root = local_broker_dir(settings)
    folders = {
        key: Path(value) for key, value in options.items() if key.endswith("folder") or "folder_" in key
    }
    # kombu defaults control_folder to "control" in the current directory: it must be set.
    assert set(folders) == {"data_folder_in", "data_folder_out", "processed_folder", "control_folder"}
    for name, folder in folders.items():
        assert folder.is_relative_to(root), name
        assert folder.is_dir(), name


def test_the_app_carries_the_options(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = create_celery(settings)
    assert app.conf.broker_transport_options["control_folder"] == str(local_broker_dir(settings) / "control")


def test_redis_gets_visibility_and_restore_settings() -> None:
    settings = Settings(broker_url="redis://127.0.0.1:6379/9", events_visibility_timeout_seconds=42)
    options = broker_options(settings)
    assert options["visibility_timeout"] == 42
    assert "control_folder" not in options


def test_the_local_queue_shows_a_message_only_once_it_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kombu's own filesystem transport creates the message file under its queue's name, then
    writes it; a consumer moving and reading it in between loses the message. Ours renames a
    finished file into place."""
    settings = Settings(data_dir=tmp_path / "data")
    app = create_celery(settings)
    folder = local_broker_dir(settings) / "in"
    renames: list[tuple[str, str, bytes, list[str]]] = []
    replace = os.replace

    def watching_replace(source: str, target: str) -> None:
        # at the moment the message takes its queue's name: what the folder and the file hold
        renames.append((source, target, Path(source).read_bytes(), sorted(os.listdir(folder))))
        replace(source, target)

    monkeypatch.setattr(os, "replace", watching_replace)
    with app.connection() as connection:
        queue = connection.SimpleQueue("test.atomic")
        queue.put({"ids": ["Outgoing_1", "Outgoing_2"]})
        message = queue.get(timeout=5)
        assert message.payload == {"ids": ["Outgoing_1", "Outgoing_2"]}
        message.ack()
        queue.close()
    ((source, target, written, listed),) = renames
    assert target.endswith(".test.atomic.msg")
    assert json.loads(written)["body"]  # the whole message, before it is visible
    assert [name for name in listed if name.endswith(".msg")] == []  # nothing under a queue name yet
    assert "." not in Path(source).name  # the file being written matches no queue


def test_importing_the_app_imports_no_domain() -> None:
    """core is plumbing: building the Celery app must not pull in gateway.events (or any domain)."""
    import subprocess
    import sys

    code = (
        "import sys; from gateway.core.celery_app import create_celery; create_celery(); "
        "print(sorted(m for m in sys.modules if m.startswith('gateway.') "
        "and not m.startswith('gateway.core')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert found == "[]"
