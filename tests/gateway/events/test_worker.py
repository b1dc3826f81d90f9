"""``trunkline worker``'s process (gateway.events.worker): its Celery app carries the events'
tasks; the core app it starts from carries none."""

from __future__ import annotations

from pathlib import Path

from gateway.core.celery_app import create_celery
from gateway.core.settings import Settings
from gateway.events.tasks import DELIVER_TASK, VALIDATE_TASK
from gateway.events.worker import worker_celery


def test_the_worker_app_registers_the_events_tasks(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    app = worker_celery(settings)
    assert {DELIVER_TASK, VALIDATE_TASK} <= set(app.tasks)
    task = app.tasks[DELIVER_TASK]
    assert (task.acks_late, task.reject_on_worker_lost, task.ignore_result) == (True, True, True)
    # the same broker configuration as every other process
    assert app.conf.broker_transport_options == create_celery(settings).conf.broker_transport_options


def test_the_core_app_registers_none_of_them(tmp_path: Path) -> None:
    app = create_celery(Settings(data_dir=tmp_path / "data"))
    assert not {DELIVER_TASK, VALIDATE_TASK} & set(app.tasks)
