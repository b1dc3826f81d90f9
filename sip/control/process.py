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

from gateway.calls import repository, service
from gateway.calls.play_sources import PlaySourcePreparer
from gateway.core.celery_app import create_celery
from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.core.startup import freeze_startup_objects
from gateway.core.tls import resolve_tls
from gateway.events.runtime import keyring_from_settings
from sip.control.commands import CommandConsumer
from sip.control.controller import CallController
from sip.control.lanes import EventLanes
from sip.control.media import MediaController
from sip.edge import EdgeTls
from sip.worker.config import DEFAULT_MEDIA_POLL_SECONDS, DEFAULT_POLL_MS, EdgeKind
from sip.worker.main import SipRuntime, run_sip
from sip.worker.pool import WorkerEvent

log = logging.getLogger("trunkline.calls.sip")

TICK_SECONDS = 0.25
HEARTBEAT_SECONDS = 1.0  # well inside Settings.sip_process_lost_seconds (>= 3)


def process_id() -> str:
    """A name for this SIP process, unique across restarts and hosts (its queue's name)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Heartbeat:
    """This process's row in ``sip_processes``, refreshed every second on a thread of its own
    (not the ring timer's, whose database work could delay it). The calls' sweeper ends the
    calls of a process whose row goes silent (gateway.calls.sweeper) or says it stopped."""

    def __init__(self, database: Database, process: str) -> None:
        self.database = database
        self.process = process
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        with self.database.session() as session:
            repository.beat(session, self.process, socket.gethostname(), os.getpid(), utcnow())

    def start(self, stop: threading.Event) -> None:
        def run() -> None:
            while not stop.wait(HEARTBEAT_SECONDS):
                try:
                    self.beat()
                except Exception:  # the database is away: the next beat tries again
                    log.exception("SIP process heartbeat")

        self._thread = threading.Thread(target=run, name="sip-heartbeat", daemon=True)
        self._thread.start()

    def stopped(self) -> None:
        """A clean stop: the pool hung its calls up; the sweeper ends their rows at once."""
        if self._thread is not None:
            self._thread.join(HEARTBEAT_SECONDS * 2)
        try:
            with self.database.session() as session:
                repository.stop_process(session, self.process, utcnow())
        except Exception:
            log.exception("SIP process stop mark")


def edge_tls(settings: Settings, listen: str) -> EdgeTls:
    """Kamailio's TLS files: the operator's certificate and key, or one made by the data
    directory's own CA for the listen host (its CA in sip-tls/ca.pem, for the carriers)."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    if (settings.sip_tls_cert_file is None) != (settings.sip_tls_key_file is None):
        raise ValueError("give both TRUNKLINE_SIP_TLS_CERT_FILE and TRUNKLINE_SIP_TLS_KEY_FILE, or neither")
    files = resolve_tls(settings.sip_tls_cert_file, settings.sip_tls_key_file, settings.sip_tls_dir, [host])
    return EdgeTls(
        str(files.cert_file),
        str(files.key_file),
        str(settings.sip_tls_ca_file),
        settings.sip_tls_verify_carriers,
    )


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
    tls_port: int | None = None,
    stop: threading.Event | None = None,
) -> None:
    tls = edge_tls(settings, listen) if tls_port is not None else None
    if tls is not None and edge is not EdgeKind.KAMAILIO:
        raise ValueError("SIP TLS terminates at Kamailio: --tls-port needs --edge kamailio")
    database = Database(settings.effective_database_url)
    if settings.sip_config_file is not None:
        with database.session() as session:
            applied = service.apply_config_file(session, settings.sip_config_file)
        log.info(
            "SIP config %s: %d trunks, %d routes", settings.sip_config_file, applied.trunks, applied.routes
        )
    name = process_id()
    heartbeat = Heartbeat(database, name)
    heartbeat.beat()  # before any call: a process that holds calls always has a heartbeat row
    media = MediaController(database, PlaySourcePreparer.from_settings(settings))
    controller = CallController(
        database,
        keyring_from_settings(settings),
        name,
        timedelta(seconds=settings.call_ring_timeout_seconds),
        settings.token_issuer,
        media,
        media_poll_seconds,
    )
    stop = stop or threading.Event()
    heartbeat.start(stop)
    celery = create_celery(settings)
    consumers: list[CommandConsumer] = []
    lanes: list[EventLanes] = []

    def started(runtime: SipRuntime) -> None:
        def on_event(event: WorkerEvent) -> None:
            controller.on_event(event, runtime)

        lanes.append(EventLanes(settings.sip_event_lanes, on_event))
        lanes[0].start()
        consumer = CommandConsumer(
            celery,
            name,
            lambda command: controller.send(command, runtime),
            lambda request: media.on_request(request, runtime),
        )
        consumer.start()
        consumers.append(consumer)

        def ticks() -> None:
            while not stop.wait(TICK_SECONDS):
                try:
                    controller.tick(runtime)
                except Exception:
                    log.exception("ring timer")

        threading.Thread(target=ticks, name="sip-ring-timer", daemon=True).start()
        freeze_startup_objects()  # as the api and the workers do: its gen-2 passes took 75 ms
        log.info("SIP process %s: trunks send to %s", name, runtime.address)

    def handle(event: WorkerEvent, _runtime: SipRuntime) -> None:
        lanes[0].submit(event)

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
            tls_port=tls_port,
            tls=tls,
        )
    finally:
        stop.set()
        for consumer in consumers:
            consumer.stop()
        for lane_set in lanes:
            lane_set.close()
        media.close()
        heartbeat.stopped()
        database.dispose()
