"""A loop on a daemon thread of its own, stopped by an event: the shape the events dispatcher
and the calls' sweeper share (``trunkline worker`` runs both beside Celery)."""

from __future__ import annotations

import threading


class LoopThread:
    """Subclasses set ``thread_name`` and write :meth:`loop`, which returns once ``stop`` is set."""

    thread_name = "trunkline-loop"

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._thread: threading.Thread | None = None

    def loop(self) -> None:
        raise NotImplementedError

    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.loop, name=self.thread_name, daemon=True)
        self._thread.start()
        return self._thread

    def close(self, timeout: float = 5.0) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
