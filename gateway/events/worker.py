"""``trunkline worker``: the Celery worker that sends deliveries and runs handshakes, and the
dispatcher thread that feeds it (:func:`run_worker` is the process's entry point)."""

from __future__ import annotations

import signal
import threading
import time
import warnings
from datetime import timedelta
from typing import Any

import structlog
from celery import Celery
from celery.signals import worker_shutting_down

from gateway.calls.commands import CommandPublisher
from gateway.calls.sweeper import CallSweeper, SweepBounds
from gateway.core.celery_app import EVENTS_QUEUE, create_celery, set_celery_app
from gateway.core.settings import Settings, get_settings
from gateway.core.startup import freeze_startup_objects
from gateway.events.dispatcher import Dispatcher
from gateway.events.local import LocalDeliveries
from gateway.events.runtime import Runtime, set_runtime
from gateway.events.tasks import register

# How long the Celery worker must have run for the restart delay to start again from its minimum.
RESTART_RESET_SECONDS = 60


def worker_celery(settings: Settings) -> Celery:
    """The Celery app of a worker process, with the events' tasks registered on it."""
    app = create_celery(settings)
    register(app)
    return app


def _run_celery_worker(app: Celery, argv: list[str], log: Any) -> None:
    """Run the Celery worker; start it again when it dies of an error.

    kombu's Redis transport can crash the worker with an "Unrecoverable error" when the broker
    goes away while messages are unacknowledged (docs/performance.md, History). Nothing is lost
    (the outbox and the delivery rows are the truth), but deliveries would stop until something
    restarted the process, so it is restarted here. A requested stop (SIGTERM/SIGINT, which
    Celery announces with ``worker_shutting_down``) ends the loop.
    """
    requested = threading.Event()

    def on_shutdown(**_kwargs: Any) -> None:
        requested.set()

    worker_shutting_down.connect(on_shutdown, weak=False)
    delay = 0.5
    while True:
        started = time.monotonic()
        app.start(argv)
        if requested.is_set():
            return
        if time.monotonic() - started > RESTART_RESET_SECONDS:
            delay = 0.5
        log.error("celery worker stopped without being asked to; restarting it", in_seconds=delay)
        app.close()  # drop pooled broker connections; the next start makes new ones
        time.sleep(delay)
        delay = min(delay * 2, 10.0)


def _silence_root_warning() -> None:
    """Celery warns at every start that it runs as root (containers and `trunkline up` as root
    do); it accepts only JSON (gateway.core.celery_app), which is what the warning is about."""
    from celery.exceptions import SecurityWarning

    warnings.filterwarnings(
        "ignore", message="You're running the worker with superuser", category=SecurityWarning
    )


def _resume_refused_validations(rt: Runtime, log: Any) -> None:
    """Handshakes an earlier worker's SSRF guard refused are tried again by this one."""
    from gateway.core.db import utcnow
    from gateway.events.validation import resume_refused_validations

    with rt.database.session() as session:
        resumed = resume_refused_validations(session, utcnow())
    if resumed:
        log.info("handshakes refused by an earlier worker are tried again", subscriptions=resumed)


def call_sweeper(settings: Settings, rt: Runtime, app: Celery) -> CallSweeper:
    """The calls' sweeper (gateway.calls.sweeper): it runs beside the dispatcher, which is the
    process that is up whether or not any SIP process is."""
    bounds = SweepBounds(
        timedelta(seconds=settings.call_place_timeout_seconds),
        timedelta(seconds=settings.sip_process_lost_seconds),
        timedelta(seconds=settings.call_command_timeout_seconds),
    )
    return CallSweeper(rt.database, CommandPublisher(app).send, bounds)


def run_worker(
    settings: Settings | None = None,
    *,
    concurrency: int | None = None,
    dispatcher: bool = True,
    deliveries: bool = True,
    metrics_port: int | None = None,
    hostname: str | None = None,
) -> None:
    """Run the Celery worker (deliveries and handshakes) and the dispatcher thread."""
    from gateway.core.storage import prepare_storage

    settings = settings or get_settings()
    if concurrency is not None:  # its threads and its database pool alike
        settings = settings.model_copy(update={"events_delivery_concurrency": concurrency})
    log = structlog.get_logger("trunkline.worker")
    _silence_root_warning()
    prepare_storage(settings)
    app = worker_celery(settings)
    set_celery_app(app)
    rt = Runtime.from_settings(settings)
    set_runtime(rt)  # the Celery tasks' runtime() is this one
    if metrics_port:
        from gateway.core.metrics import serve_metrics

        serve_metrics("worker", metrics_port, addr="127.0.0.1")
    threads = settings.events_delivery_concurrency
    # A process that runs both sends its own dispatcher's tasks on its own threads (no broker hop);
    # its Celery worker still serves the tasks of nodes that run only a dispatcher.
    local = (
        LocalDeliveries(rt, threads)
        if dispatcher and deliveries and settings.events_local_deliveries
        else None
    )
    loop = Dispatcher(app, rt, local=local) if dispatcher else None
    sweeper = call_sweeper(settings, rt, app) if dispatcher else None
    freeze_startup_objects()
    if loop is not None:
        _resume_refused_validations(rt, log)
        loop.start()
        log.info("dispatcher started")
    if sweeper is not None:
        sweeper.start()
    try:
        if deliveries:
            argv = [
                "--quiet",  # no banner on stdout: the process logs that it started
                "worker",
                "--pool=threads",
                f"--concurrency={threads}",
                f"--queues={EVENTS_QUEUE}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--loglevel={settings.log_level}",
            ]
            if hostname:
                argv.append(f"--hostname={hostname}")
            _run_celery_worker(app, argv, log)
        else:
            stop = loop.stop if loop is not None else None
            if stop is not None:
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                stop.wait()
    finally:
        if sweeper is not None:
            sweeper.close()
        if loop is not None:
            loop.close()
        if local is not None:
            local.close()
        rt.client.close()
