"""The SIP process's worker events handled on a few threads ("lanes") instead of one.

Every event of a call comes from the worker that holds it, and a call's legs share one worker
(the pool places a leg beside its call's), so a lane per worker index keeps each call's events
in the order its worker sent them, while one call's database commit no longer holds up the
events of calls on other workers. With one thread, the controller's thread was about half busy
at 200 IVR calls (most of it waiting on PostgreSQL), and a burst of call set-ups queued the
digits of calls already connected behind it (docs/performance.md, "Callbacks without the
broker, and lanes").

Events that no worker sent (``WorkerEvent.worker`` -1: a command the pool could not deliver) go
to the lane of their call id, as no other event of theirs is in flight.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable

from prometheus_client import Gauge

from gateway.core.metrics import owned_by
from sip.worker.pool import WorkerEvent

log = logging.getLogger("trunkline.sip.lanes")

EVENT_BACKLOG = Gauge(
    "trunkline_sip_event_backlog", "Worker events waiting for the SIP controller, by lane.", ["lane"]
)
owned_by("sip", EVENT_BACKLOG)

_STOP = object()


def lane_of(event: WorkerEvent, lanes: int) -> int:
    """The lane of a worker's events: its index modulo the lanes (a stable hash of the call id
    for events of no worker)."""
    if event.worker >= 0:
        return event.worker % lanes
    call_id = getattr(event.event, "call_id", "")
    return zlib.crc32(call_id.encode()) % lanes


class EventLanes:
    """``lanes`` threads, each handling its own workers' events in order with ``handle``."""

    def __init__(self, lanes: int, handle: Callable[[WorkerEvent], object]) -> None:
        if lanes < 1:
            raise ValueError("at least one lane")
        self._handle = handle
        self._queues: list[queue.SimpleQueue[object]] = [queue.SimpleQueue() for _ in range(lanes)]
        self._threads = [
            threading.Thread(target=self._run, args=(index,), name=f"sip-events-{index}", daemon=True)
            for index in range(lanes)
        ]
        for index in range(lanes):
            EVENT_BACKLOG.labels(str(index)).set(0)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, event: WorkerEvent) -> None:
        index = lane_of(event, len(self._queues))
        EVENT_BACKLOG.labels(str(index)).inc()
        self._queues[index].put(event)

    def close(self, timeout: float = 5.0) -> None:
        """Handle what is queued, then stop the threads."""
        for lane in self._queues:
            lane.put(_STOP)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _run(self, index: int) -> None:
        lane, backlog = self._queues[index], EVENT_BACKLOG.labels(str(index))
        while True:
            item = lane.get()
            if item is _STOP:
                return
            backlog.dec()
            assert isinstance(item, WorkerEvent)
            try:
                self._handle(item)
            except Exception:  # one bad event must not stop the lane
                log.exception("SIP event %s", item)
