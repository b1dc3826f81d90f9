"""`trunkline sip`: the pool of pjsua2 workers, behind Kamailio or facing the trunk alone.

``start_sip`` builds and starts the runtime (workers, then the edge); ``run_sip`` is the
blocking entry point: it hands every worker event to ``handler`` on the calling thread until
SIGTERM/SIGINT or ``stop``, then stops Kamailio and the workers. The control plane talks to
calls only through ``SipRuntime.send(command)`` (routed to the worker holding the call id) and
the events it receives; see docs/sip-worker.md.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sip.edge import EdgeTls, destinations
from sip.kamailio import KamailioEdge
from sip.worker.config import DEFAULT_POLL_MS, MAX_CALLS_PER_WORKER, NO_EDGE_HINT, EdgeKind, PoolConfig
from sip.worker.messages import Command
from sip.worker.pool import WorkerEvent, WorkerPool
from sip.worker.status import PoolStatus, WorkerStatus
from sip.worker.status import write as write_status

log = logging.getLogger(__name__)
EDGE_SETTLE_SECONDS = 5.0  # the ready workers' states recorded before Kamailio starts (instant)


@dataclass(frozen=True, slots=True)
class SipOptions:
    """What `trunkline sip` takes: workers, edge, the trunk-facing address, internal ports."""

    workers: int = 1
    edge: EdgeKind = EdgeKind.KAMAILIO
    listen: str = "127.0.0.1:5060"
    worker_host: str = "127.0.0.1"
    worker_sip_port: int = 15070
    rtp_port: int = 20000
    rtp_ports_per_worker: int = 40
    rpc_port: int = 15069
    kamailio_dir: Path | None = None
    kamailio_children: int = 4
    poll_ms: int = DEFAULT_POLL_MS
    # SIP TLS at Kamailio (--edge kamailio only): its port on the listen host, and the files
    tls_port: int | None = None
    tls: EdgeTls | None = None


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--listen wants HOST:PORT, got {listen!r}")
    if host in ("0.0.0.0", "::"):  # noqa: S104 - refused, not bound
        raise ValueError("--listen wants the address the trunks reach (it goes into Via and Record-Route)")
    return host, int(port)


class SipRuntime:
    """A started pool (and edge). ``send`` is thread-safe; ``events`` is a queue of WorkerEvent."""

    def __init__(self, pool: WorkerPool, edge: KamailioEdge | None, address: str) -> None:
        self.pool = pool
        self.edge = edge
        self.address = address  # where the trunks send their INVITEs

    @property
    def events(self) -> queue.Queue[WorkerEvent]:
        return self.pool.events

    def send(self, command: Command) -> int | None:
        """Route a command to the worker holding its call id; None (and a CommandFailed) if none."""
        return self.pool.send(command)

    def status(self) -> list[WorkerStatus]:
        return self.pool.status()

    def stop(self) -> None:
        if self.edge is not None:
            self.edge.stop()
        self.pool.stop()


def start_sip(options: SipOptions) -> SipRuntime:
    """Start the workers, then (edge kamailio) Kamailio in front of them."""
    host, port = parse_listen(options.listen)
    if options.edge is EdgeKind.NONE:
        if options.tls_port is not None:
            raise ValueError("SIP TLS terminates at Kamailio: it needs --edge kamailio")
        if options.workers != 1:
            log.warning("--edge none runs one worker (asked for %d)", options.workers)
        log.warning(NO_EDGE_HINT.format(calls=MAX_CALLS_PER_WORKER))
        config = PoolConfig(
            workers=1,
            host=host,
            sip_port=port,
            rtp_port=options.rtp_port,
            rtp_ports_per_worker=options.rtp_ports_per_worker,
            poll_ms=options.poll_ms,
        )
        pool = WorkerPool(config)
        pool.start()
        return SipRuntime(pool, None, f"{host}:{port}")

    config = PoolConfig(
        workers=options.workers,
        host=options.worker_host,
        sip_port=options.worker_sip_port,
        rtp_port=options.rtp_port,
        rtp_ports_per_worker=options.rtp_ports_per_worker,
        poll_ms=options.poll_ms,
        outbound_proxy=f"sip:{host}:{port};lr",
        trust_source_header=True,
    )
    edge = KamailioEdge(
        destinations(options.worker_host, options.worker_sip_port, options.workers),
        listen_host=host,
        listen_port=port,
        rpc_port=options.rpc_port,
        directory=options.kamailio_dir,
        children=options.kamailio_children,
        tls_port=options.tls_port,
        tls=options.tls,
    )
    pool = WorkerPool(config, edge=edge.set_worker, end_calls=edge.end_calls_of)
    pool.start()
    pool.edge_settled(EDGE_SETTLE_SECONDS)  # Kamailio's dispatcher list is written with them
    try:
        edge.start()
    except Exception:
        pool.stop()
        raise
    return SipRuntime(pool, edge, edge.address)


EventHandler = Callable[[WorkerEvent, SipRuntime], None]


def run_sip(
    workers: int = 1,
    edge: EdgeKind | str = EdgeKind.KAMAILIO,
    listen: str = "127.0.0.1:5060",
    *,
    handler: EventHandler | None = None,
    stop: threading.Event | None = None,
    started: Callable[[SipRuntime], None] | None = None,
    status_file: Path | None = None,
    **options: object,
) -> None:
    """Run the SIP process until SIGTERM/SIGINT (main thread) or ``stop`` is set.

    ``handler(event, runtime)`` gets every worker event in order, on this thread; it answers
    calls with ``runtime.send(...)``. ``started(runtime)`` is called once everything is up.
    ``status_file`` is rewritten every second with the workers' status (``sip.worker.status``).
    """
    settings = SipOptions(workers=workers, edge=EdgeKind(edge), listen=listen, **options)  # type: ignore[arg-type]
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    runtime = start_sip(settings)
    log.info("SIP: %d worker(s), edge %s, trunks send to %s", workers, settings.edge, runtime.address)
    try:
        if started is not None:
            started(runtime)
        next_status = 0.0
        while not stop.is_set():
            if status_file is not None and time.monotonic() >= next_status:
                pool_status = PoolStatus(
                    time.time(), settings.edge.value, runtime.address, tuple(runtime.status())
                )
                write_status(status_file, pool_status)
                next_status = time.monotonic() + 1.0
            try:
                event = runtime.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if handler is None:
                log.info("SIP event from worker %d: %s", event.worker, event.event)
            else:
                handler(event, runtime)
    finally:
        runtime.stop()
