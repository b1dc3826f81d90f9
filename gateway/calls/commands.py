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

from gateway.core.metrics import owned_by
from sip.worker.messages import Command, encode

log = logging.getLogger("trunkline.calls.commands")

Exchange: Any = entity.Exchange
Queue: Any = entity.Queue

QUEUE_PREFIX = "trunkline.sip."
# An outbound call's first INVITE: every SIP process consumes this queue too, and the one that
# takes the command places the call and records itself on it (repository.claim_placement).
PLACE_QUEUE = QUEUE_PREFIX + "place"

COMMANDS_PUBLISHED = Counter(
    "trunkline_call_commands_published_total", "Call commands the API sent to SIP processes."
)
owned_by("api", COMMANDS_PUBLISHED)  # the SIP process's own counters are in sip.control.commands


def command_queue(process: str) -> Any:
    name = QUEUE_PREFIX + process
    return Queue(name, Exchange(name, type="direct"), routing_key=name, durable=False)


def place_queue() -> Any:
    """The queue the SIP processes compete for: new outbound calls."""
    return Queue(PLACE_QUEUE, Exchange(PLACE_QUEUE, type="direct"), routing_key=PLACE_QUEUE, durable=False)


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
        """``command`` to the SIP process ``process``; with no process (a call no SIP process
        holds yet: its first INVITE), to the queue every SIP process competes for."""
        app = self._celery()
        queue = command_queue(process) if process else place_queue()
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
