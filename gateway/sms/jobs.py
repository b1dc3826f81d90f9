"""SMS send jobs on Celery: the API publishes message ids, ``trunkline smpp`` consumes them.

The ``sms_messages`` row stays the truth: a job only says "this committed row is ready, claim
it now". The SMPP process claims by id with the same transaction as ever (only ``queued``, due
rows not under a live claim), so a duplicate or stale job claims nothing, and a job lost with
the broker (Redis restarted, never published) is made up for by the process's reconciler, which
claims first attempts whose job has not come within ``sms_job_grace_seconds``.

A job is a Celery task message (protocol 2, JSON) for the task :data:`SEND_TASK` on its own queue
:data:`SEND_QUEUE`, so ``trunkline worker`` (events queue only) never takes it. Its one argument
is a list of message ids; the publisher coalesces the ids of many requests into one task.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import Celery
from kombu import entity, messaging
from prometheus_client import Counter

from gateway.core.broker import LOCAL_BROKER_SCHEME
from gateway.core.metrics import owned_by

log = logging.getLogger("trunkline.sms.jobs")

# kombu's annotations are partial (its calls count as untyped): its objects are Any here.
Exchange: Any = entity.Exchange
Queue: Any = entity.Queue
Consumer: Any = messaging.Consumer

SEND_TASK = "trunkline.sms.submit"
SEND_QUEUE = "trunkline.sms.submit"
# A message id is "Outgoing_" + 14 digits + a UUID (59 characters); anything much longer is not one.
MAX_ID_LENGTH = 128

JOBS_PUBLISHED = Counter(
    "trunkline_sms_jobs_published_total", "Send jobs (Celery tasks) published by the API."
)
JOB_PUBLISH_FAILURES = Counter(
    "trunkline_sms_job_publish_failures_total",
    "Messages whose send job could not be published (broker away): the reconciler sends them.",
)
JOBS_RECEIVED = Counter(
    "trunkline_sms_jobs_received_total", "Send jobs the SMPP process took from the broker."
)
JOBS_REJECTED = Counter(
    "trunkline_sms_jobs_rejected_total", "Messages on the send-job queue that were not a send job (dropped)."
)
JOB_CONSUMER_ERRORS = Counter(
    "trunkline_sms_job_consumer_errors_total", "Broker connections of the send-job consumer lost or refused."
)
owned_by("api", JOBS_PUBLISHED, JOB_PUBLISH_FAILURES)
owned_by("smpp", JOBS_RECEIVED, JOBS_REJECTED, JOB_CONSUMER_ERRORS)


def send_queue(name: str = SEND_QUEUE) -> Any:
    """The kombu queue of send jobs: a direct exchange and routing key of the same name."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


# The task message -------------------------------------------------------------------------------------


class NotASendJob(ValueError):
    """A message on the send-job queue that is not a well-formed send job."""


def decode_job(headers: Mapping[str, Any], body: Any) -> list[str]:
    """The message ids of a Celery protocol 2 task message (``body = [args, kwargs, embed]``,
    the task name in the ``task`` header); :class:`NotASendJob` for anything else."""
    task = headers.get("task")
    if task != SEND_TASK:
        raise NotASendJob(f"task {task!r} is not {SEND_TASK}")
    if not isinstance(body, list | tuple) or len(body) != 3:
        raise NotASendJob("the body is not [args, kwargs, embed] (Celery task protocol 2)")
    args, kwargs = body[0], body[1]
    if not isinstance(args, list | tuple) or len(args) != 1 or kwargs:
        raise NotASendJob("a send job takes exactly one argument, the list of message ids")
    ids = args[0]
    if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LENGTH for i in ids):
        raise NotASendJob("the argument is not a list of message ids")
    return list(ids)


# The API side ----------------------------------------------------------------------------------------


class SendJobPublisher:
    """Publishes the ids of committed messages as send jobs, off the request path.

    :meth:`publish` only appends to a buffer; a background thread waits ``flush_seconds`` for more
    ids to come (or ``max_ids``), then publishes one task per ``max_ids`` ids. A publish that
    fails (broker away) is logged and counted, and its ids dropped: their rows are ``queued``,
    so the SMPP process's reconciler sends them after the grace period. Nothing is retried here,
    so a dead broker never makes the buffer grow without end or slows a request.
    """

    def __init__(
        self,
        app: Celery | Callable[[], Celery],
        *,
        queue: str = SEND_QUEUE,
        flush_seconds: float = 0.02,
        max_ids: int = 500,
        max_buffered: int = 100_000,
    ) -> None:
        self._app_or_factory = app
        self._app: Celery | None = app if isinstance(app, Celery) else None
        self.queue = send_queue(queue)
        self.flush_seconds = flush_seconds
        self.max_ids = max_ids
        self.max_buffered = max_buffered
        self._buffer: list[str] = []
        self._publishing = 0  # ids taken from the buffer and not yet published or dropped
        self._condition = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._last_failure_log = 0.0

    def publish(self, message_ids: Sequence[str]) -> None:
        """Queue jobs for these committed messages (call only after the commit)."""
        if not message_ids:
            return
        with self._condition:
            if self._closing:
                JOB_PUBLISH_FAILURES.inc(len(message_ids))  # shutting down: the reconciler's
                return
            self._ensure_thread()
            room = self.max_buffered - len(self._buffer)
            if room < len(message_ids):
                JOB_PUBLISH_FAILURES.inc(len(message_ids) - max(room, 0))
            self._buffer.extend(message_ids[: max(room, 0)])
            self._condition.notify()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every id handed over so far was published or dropped (True if so)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            self._condition.notify()
            while self._buffer or self._publishing:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._condition.wait(min(remaining, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is buffered and stop the thread."""
        with self._condition:
            self._closing = True
            self._condition.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _ensure_thread(self) -> None:
        # A forked child (an API worker) inherits the object but not the thread.
        if self._thread is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="sms-job-publisher", daemon=True)
            self._thread.start()

    def _celery(self) -> Celery:
        if self._app is None:
            factory = self._app_or_factory
            assert not isinstance(factory, Celery)
            self._app = factory()
        return self._app

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._buffer and not self._closing:
                    self._condition.wait()
                if not self._buffer:
                    return  # closing and nothing left
                # Coalesce: the ids of the requests arriving meanwhile go into the same task.
                # Every publish() notifies, so wait on until the deadline, not the next notify.
                deadline = time.monotonic() + self.flush_seconds
                while len(self._buffer) < self.max_ids and not self._closing:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._condition.wait(remaining)
                ids, self._buffer = self._buffer, []
                self._publishing = len(ids)
            try:
                self._send(ids)
            finally:
                with self._condition:
                    self._publishing = 0
                    self._condition.notify_all()

    def _send(self, ids: list[str]) -> None:
        chunks = [ids[i : i + self.max_ids] for i in range(0, len(ids), self.max_ids)]
        sent = 0
        try:
            app = self._celery()
            with app.producer_or_acquire() as producer:
                for chunk in chunks:
                    # retry=False: with the broker away, fail now; the reconciler covers the rows
                    app.send_task(SEND_TASK, args=[chunk], queue=self.queue, producer=producer, retry=False)
                    sent += len(chunk)
                    JOBS_PUBLISHED.inc()
        except Exception as exc:  # kombu and redis raise many types while the broker is away
            JOB_PUBLISH_FAILURES.inc(len(ids) - sent)
            now = time.monotonic()
            if now - self._last_failure_log > 10:
                self._last_failure_log = now
                log.warning(
                    "send jobs not published (%s: %s); %d messages are left to the reconciler",
                    type(exc).__name__,
                    exc,
                    len(ids) - sent,
                )


# The SMPP process's side -----------------------------------------------------------------------------


class SendJobConsumer:
    """Takes send jobs off the broker in a thread and hands their ids to ``on_jobs``.

    ``on_jobs(ids)`` returns once the ids were claimed (the claim committed): True acknowledges
    the job, False gives it back to the queue (the process is stopping). A message that is not a
    send job is logged, counted and dropped. A lost broker connection is reopened with backoff;
    a job delivered but not acknowledged when it went returns to the queue (Redis: after the
    visibility timeout) and is then a harmless duplicate.
    """

    def __init__(
        self,
        app: Celery,
        on_jobs: Callable[[list[str]], bool],
        *,
        queue: str = SEND_QUEUE,
        prefetch: int = 4,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
    ) -> None:
        self.app = app
        self.on_jobs = on_jobs
        self.queue = send_queue(queue)
        self.prefetch = prefetch
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stop_event = threading.Event()
        self.connected = threading.Event()  # set while a consumer is registered with the broker
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sms-job-consumer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _connection(self) -> Any:
        options: dict[str, Any] = {}
        if self.app.conf.broker_url == LOCAL_BROKER_SCHEME:
            options["polling_interval"] = 0.05  # kombu's default of 1 s would delay every job
        return self.app.connection_for_read(transport_options=options)

    def _run(self) -> None:
        delay = self.backoff_initial
        while not self.stop_event.is_set():
            try:
                with self._connection() as connection:
                    connection.ensure_connection(max_retries=1)
                    self._consume(connection)
                    delay = self.backoff_initial
            except Exception as exc:  # the broker went away or refused: reopen after a pause
                self.connected.clear()
                JOB_CONSUMER_ERRORS.inc()
                log.warning(
                    "send-job consumer: %s: %s; reconnecting in %.1fs", type(exc).__name__, exc, delay
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.backoff_max)
        self.connected.clear()

    def _consume(self, connection: Any) -> None:
        with (
            connection.channel() as channel,
            Consumer(
                channel,
                queues=[self.queue],
                callbacks=[self._on_message],
                accept=["json"],
                prefetch_count=self.prefetch,
                on_decode_error=self._on_decode_error,
            ),
        ):
            self.connected.set()
            try:
                while not self.stop_event.is_set():
                    try:
                        connection.drain_events(timeout=0.25)
                    except TimeoutError:  # socket.timeout: nothing came
                        continue
            finally:
                self.connected.clear()

    def _on_decode_error(self, message: Any, exc: Exception) -> None:
        JOBS_REJECTED.inc()
        log.warning("dropping an undecodable message on %s: %s", self.queue.name, exc)
        message.reject()

    def _on_message(self, body: Any, message: Any) -> None:
        try:
            ids = decode_job(message.headers or {}, body)
        except NotASendJob as exc:
            JOBS_REJECTED.inc()
            log.warning("dropping a message on %s that is not a send job: %s", self.queue.name, exc)
            message.reject()
            return
        JOBS_RECEIVED.inc()
        if self.on_jobs(ids):
            message.ack()
        else:
            message.requeue()
