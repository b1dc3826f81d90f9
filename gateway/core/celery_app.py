"""The Celery application: Redis broker in production, kombu's filesystem queue for ``trunkline up``.

Plumbing only, no task is registered here: a process that runs tasks registers them on its app
(``trunkline worker`` does); a process that only sends them needs nothing but their names.

No result backend (tasks record their outcome in the database). Deliveries are acknowledged
late and given back to the queue when a worker dies, and an unacknowledged message returns to
the queue after the visibility timeout, so a SIGKILLed worker's delivery is redone elsewhere.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from gateway.core.broker import LOCAL_BROKER_SCHEME, LOCAL_BROKER_TRANSPORT, broker_url, local_broker_dir
from gateway.core.settings import Settings, get_settings

EVENTS_QUEUE = "trunkline.events"


def broker_options(settings: Settings) -> dict[str, Any]:
    url = broker_url(settings)
    if url == LOCAL_BROKER_SCHEME:
        folder = local_broker_dir(settings)
        for sub in ("in", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "in"),
            "data_folder_out": str(folder / "in"),
            "processed_folder": str(folder / "processed"),
            # kombu's default is "control" in the working directory of whoever starts a worker.
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    return {
        "visibility_timeout": settings.events_visibility_timeout_seconds,
        "unacked_restore_interval": settings.events_unacked_restore_interval_seconds,
        "unacked_restore_throttle": 1,
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
        "health_check_interval": 10,
    }


def create_celery(settings: Settings | None = None) -> Celery:
    """A configured app with no tasks registered."""
    settings = settings or get_settings()
    url = broker_url(settings)
    app = Celery("trunkline", broker=url)
    if url == LOCAL_BROKER_SCHEME:
        app.conf.broker_transport = LOCAL_BROKER_TRANSPORT
    app.conf.update(
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_default_queue=EVENTS_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=4,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=broker_options(settings),
        task_time_limit=int(settings.webhook_timeout_seconds * 2 + 30),
        task_soft_time_limit=None,
    )
    app.trunkline_settings = settings
    return app


_app: Celery | None = None


def celery_app() -> Celery:
    """The process's Celery app (created from the environment's settings on first use; the worker
    sets its own, with its tasks, through :func:`set_celery_app`)."""
    global _app  # noqa: PLW0603 - one app per process
    if _app is None:
        _app = create_celery()
    return _app


def set_celery_app(app: Celery) -> None:
    global _app  # noqa: PLW0603
    _app = app
