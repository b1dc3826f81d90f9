"""How the dispatcher waits between passes: until the poll interval ends, or, on PostgreSQL,
until a transaction that published a prompt event commits (``publish(..., prompt=True)``).

A ringing call's IncomingCall and a call's callbacks are waited on by a caller or an app; at the
default 0.1 s poll, the wait for the next pass was the largest part of INVITE -> IncomingCall
(docs/performance.md, voice). Bulk events (SMS reports) do not ask for it: waking the dispatcher
at every commit of a busy SMS worker would turn its polls into back-to-back passes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import structlog

from gateway.events.repository import wakeup

log = structlog.get_logger(__name__)

RECONNECT_SECONDS = 5.0


class DispatcherWakeup:
    """``wait(timeout)``: True when a commit woke it, False when the timeout came first.

    Without a listening connection (SQLite, or PostgreSQL away) it waits on ``stop`` for the
    timeout, as the dispatcher always did, and tries to listen again every few seconds."""

    def __init__(self, database_url: str, stop: threading.Event) -> None:
        self._url = database_url
        self._stop = stop
        self._listens = wakeup.listens(database_url)
        self._connection: psycopg.Connection[tuple[Any, ...]] | None = None
        self._connect_after = 0.0

    def wait(self, timeout: float) -> bool:
        connection = self._listening()
        if connection is None:
            self._stop.wait(timeout)
            return False
        try:
            return any(True for _ in connection.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error:
            log.warning("dispatcher wake-up connection lost, polling", exc_info=True)
            self.close()
            return False

    def _listening(self) -> psycopg.Connection[tuple[Any, ...]] | None:
        if self._connection is None and self._listens and time.monotonic() >= self._connect_after:
            self._connect_after = time.monotonic() + RECONNECT_SECONDS
            try:
                self._connection = wakeup.listening_connection(self._url)
            except psycopg.Error:
                log.warning("dispatcher wake-ups unavailable, polling", exc_info=True)
        return self._connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()
