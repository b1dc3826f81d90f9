"""The events' Celery tasks (one delivery batch, one handshake) and sending them to the broker.

Thin: the work is :func:`gateway.events.sender.deliver` and
:func:`gateway.events.handshake.handshake`. The tasks are registered on an app by whoever runs
them (:func:`gateway.events.worker.worker_celery`); sending needs only their names.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from gateway.core.celery_app import EVENTS_QUEUE
from gateway.events.handshake import handshake
from gateway.events.runtime import runtime
from gateway.events.sender import deliver

DELIVER_TASK = "trunkline.events.deliver"
VALIDATE_TASK = "trunkline.events.validate"


def register(app: Celery) -> None:
    """Register the tasks on ``app`` only (not shared: other apps of the process stay without them)."""
    options = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True, "shared": False}

    @app.task(name=DELIVER_TASK, **options)  # type: ignore[untyped-decorator]
    def deliver_task(delivery_ids: list[str]) -> None:
        deliver(runtime(), delivery_ids)

    @app.task(name=VALIDATE_TASK, **options)  # type: ignore[untyped-decorator]
    def validate_task(subscription_id: str) -> None:
        handshake(runtime(), subscription_id)


def send(app: Celery, name: str, payloads: Sequence[object]) -> None:
    """One task message per payload, over one producer connection."""
    with app.producer_or_acquire() as producer:
        for payload in payloads:
            app.send_task(name, args=[payload], queue=EVENTS_QUEUE, producer=producer)
