"""Publishing the binds' status for the operator: every second, this process's row per bind in
``smpp_bind_status`` (the API and the CLI are other processes; gateway/sms/bind_status.py reads
it). Removed on a clean stop; after a crash the rows go stale and are shown so."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from gateway.core.db import Database, utcnow
from gateway.sms.models import SmppBindStatus
from gateway.sms.repository import connections as repository
from sms.bind import SmppBind

log = logging.getLogger("trunkline.smpp.status")

PUBLISH_SECONDS = 1.0


def process_name() -> str:
    """This process among the SMPP processes: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"[:128]


def status_rows(process: str, binds: Mapping[str, SmppBind], now: datetime) -> list[SmppBindStatus]:
    rows = []
    for connection_id, bind in binds.items():
        status = bind.status()
        rows.append(
            SmppBindStatus(
                connection_id=connection_id,
                process=process,
                health=status.health.value,
                state=status.state.value,
                since=datetime.fromtimestamp(status.since, UTC),
                last_error=status.last_error[:256],
                window_in_use=status.window_in_use,
                sent_last_minute=status.sent_last_minute,
                updated_at=now,
            )
        )
    return rows


class StatusPublisher:
    """A thread writing the binds' status every ``PUBLISH_SECONDS`` until stopped."""

    def __init__(self, database: Database, binds: Callable[[], Mapping[str, SmppBind]]) -> None:
        self.database = database
        self.binds = binds
        self.process = process_name()
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def publish(self) -> None:
        rows = status_rows(self.process, dict(self.binds()), utcnow())
        with self.database.session() as session:
            repository.publish_bind_status(session, self.process, rows)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="smpp-status", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.publish()
            except Exception:  # the database away, a connection removed meanwhile: next turn
                log.warning("publishing the binds' status failed", exc_info=True)
            self.stop_event.wait(PUBLISH_SECONDS)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        try:
            with self.database.session() as session:
                repository.forget_process(session, self.process)
        except Exception:
            log.warning("removing the binds' status failed", exc_info=True)
