"""The Celery app's broker options: everything of the local queue stays in the data dir."""

from __future__ import annotations

from pathlib import Path

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
