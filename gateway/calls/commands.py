"""Call commands from any API process to the ``trunkline sip`` process holding the call.

Each SIP process consumes its own broker queue, ``trunkline.sip.<process id>`` (the id is in
every call row it holds), in sip.control.commands; this module is the API's side. A message is
the worker command's own wire form (``sip.worker.messages.encode``, a JSON object); the SIP
process hands it to its pool as is.
The call row is the truth: the API commits the state change first and publishes after, so a
command lost with the broker leaves a call the ring timer or the far end ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import entity
from prometheus_client import Counter

from sip.worker.messages import Command, encode

log = logging.getLogger("trunkline.calls.commands")

Exchange: Any = entity.Exchange
Queue: Any = entity.Queue

QUEUE_PREFIX = "trunkline.sip."

COMMANDS_PUBLISHED = Counter(
    "trunkline_call_commands_published_total", "Call commands the API sent to SIP processes."
)


def command_queue(process: str) -> Any:
    name = QUEUE_PREFIX + process
    return Queue(name, Exchange(name, type="direct"), routing_key=name, durable=False)


class CommandPublisher:
    """Sends commands to SIP processes (the API side). Thread-safe; one per process."""

    def __init__(self, app: Celery | Callable[[], Celery]) -> None:
        self._factory = app
        self._app: Celery | None = app if isinstance(app, Celery) else None
        self._lock = threading.Lock()

    def _celery(self) -> Celery:
        with self._lock:
            if self._app is None:
                factory = self._factory
                assert not isinstance(factory, Celery)
                self._app = factory()
            return self._app

    def send(self, process: str, command: Command) -> None:
        app = self._celery()
        queue = command_queue(process)
        with app.producer_or_acquire() as producer:
            producer.publish(
                encode(command).decode(),
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                declare=[queue],
                serializer="json",
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.1, "interval_step": 0.2},
            )
        COMMANDS_PUBLISHED.inc()
