"""``trunkline sip``: the SIP worker pool with the calls domain's controller on its events.

One process: the pool (sip.worker.main.run_sip: workers, optionally Kamailio), the controller
that turns worker events into call state and events (sip.control.controller), the consumer of
this process's command queue (sip.control.commands), and a timer for ring timeouts. The
process id names its queue and is written into every call it holds.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from datetime import timedelta
from pathlib import Path

from gateway.calls import service
from gateway.core.celery_app import create_celery
from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.events.runtime import keyring_from_settings
from sip.control.commands import CommandConsumer
from sip.control.controller import CallController
from sip.worker.config import DEFAULT_MEDIA_POLL_SECONDS, DEFAULT_POLL_MS, EdgeKind
from sip.worker.main import SipRuntime, run_sip
from sip.worker.pool import WorkerEvent

log = logging.getLogger("trunkline.calls.sip")

TICK_SECONDS = 0.25


def process_id() -> str:
    """A name for this SIP process, unique across restarts and hosts (its queue's name)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def status_path(settings: Settings) -> Path:
    return settings.sip_status_file


def run_sip_process(
    settings: Settings,
    *,
    workers: int = 1,
    edge: EdgeKind = EdgeKind.KAMAILIO,
    listen: str = "127.0.0.1:5060",
    worker_sip_port: int = 15070,
    rtp_port: int = 20000,
    rpc_port: int = 15069,
    poll_ms: int = DEFAULT_POLL_MS,
    media_poll_seconds: float = DEFAULT_MEDIA_POLL_SECONDS,
    stop: threading.Event | None = None,
) -> None:
    database = Database(settings.effective_database_url)
    if settings.sip_config_file is not None:
        with database.session() as session:
            applied = service.apply_config_file(session, settings.sip_config_file)
        log.info(
            "SIP config %s: %d trunks, %d routes", settings.sip_config_file, applied.trunks, applied.routes
        )
    name = process_id()
    controller = CallController(
        database,
        keyring_from_settings(settings),
        name,
        timedelta(seconds=settings.call_ring_timeout_seconds),
        settings.token_issuer,
        media_poll_seconds,
    )
    stop = stop or threading.Event()
    celery = create_celery(settings)
    consumers: list[CommandConsumer] = []

    def started(runtime: SipRuntime) -> None:
        consumer = CommandConsumer(celery, name, lambda command: controller.send(command, runtime))
        consumer.start()
        consumers.append(consumer)

        def ticks() -> None:
            while not stop.wait(TICK_SECONDS):
                try:
                    controller.tick(runtime)
                except Exception:
                    log.exception("ring timer")

        threading.Thread(target=ticks, name="sip-ring-timer", daemon=True).start()
        log.info("SIP process %s: trunks send to %s", name, runtime.address)

    def handle(event: WorkerEvent, runtime: SipRuntime) -> None:
        try:
            controller.on_event(event, runtime)
        except Exception:  # one bad event must not stop the process
            log.exception("SIP event %s", event)

    try:
        run_sip(
            workers,
            edge,
            listen,
            handler=handle,
            stop=stop,
            started=started,
            status_file=status_path(settings),
            worker_sip_port=worker_sip_port,
            rtp_port=rtp_port,
            rpc_port=rpc_port,
            poll_ms=poll_ms,
        )
    finally:
        stop.set()
        for consumer in consumers:
            consumer.stop()
        database.dispose()
