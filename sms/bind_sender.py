"""The submit side of a bind's runtime: its queue, the sender thread, and every submit's result.

``submit()`` queues; the sender thread takes queued submits in order, waits for a window slot,
the rate limiter and any throttling pause, then writes them, with the ones ready behind them, in
one ``sendall``. Which slot is free, which sequence number a submit gets and what its resp
means is decided by the sans-IO core (``sms.esme.Esme``), called under the bind's core lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Final

from sms import metrics
from sms.bind_health import RecentCount
from sms.bind_session import Session
from sms.bind_types import BindConfig, SubmitOutcome, SubmitRequest, SubmitResult
from sms.esme import Completed, Esme
from sms.ratelimit import TokenBucket

log = logging.getLogger("trunkline.smpp")

MAX_BURST: Final = 64  # submits the sender writes with one sendall
COUNTERS: Final = (
    "submits_written",
    "accepted",
    "retry",
    "unknown",
    "failed",
    "throttled",
    "reconnects",
    "bind_failures",
    "delivers",
    "enquire_link_timeouts",
)


@dataclass(slots=True)
class Queued:
    request: SubmitRequest
    body: bytes
    future: Future[SubmitResult]
    deadline: float
    started: bool = False  # set_running_or_notify_cancel() done: no longer cancellable


class Tally:
    """The bind's counters (what ``BindStats`` reports) and the one place a submit is resolved."""

    def __init__(self, label: str) -> None:
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._lock = threading.Lock()
        self._accepted_recently = RecentCount()
        self._m_submits = {outcome: metrics.SUBMITS.labels(label, outcome.value) for outcome in SubmitOutcome}

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def accepted_last_minute(self) -> int:
        """Submits the SMSC accepted in the last minute (what the operator's status shows)."""
        with self._lock:
            return self._accepted_recently.total(time.monotonic())

    def finish(self, item: Queued, result: SubmitResult) -> None:
        with self._lock:
            self._counts[result.outcome.value] += 1
            if result.ok:
                self._accepted_recently.add(time.monotonic())
        self._m_submits[result.outcome].inc()
        if not item.future.done():
            item.future.set_result(result)

    def finish_all(self, entries: Iterable[Completed[Queued]]) -> None:
        for entry in entries:
            if entry.result is not None:
                self.finish(entry.item, entry.result)


class Sender:
    """The queue of submits not yet written, and the thread (``run``) that writes them."""

    def __init__(
        self,
        config: BindConfig,
        esme: Esme[Queued],
        core: threading.Condition,
        tally: Tally,
        stop_event: threading.Event,
        session_lost: Callable[[Session, str], None],
    ) -> None:
        self._config = config
        self._esme = esme
        self._core = core  # guards esme; notified when a window slot frees up
        self._tally = tally
        self._stop_event = stop_event
        self._session_lost = session_lost
        self._label = config.name
        self._cond = threading.Condition()  # guards the queue, the session and the stop flag
        self._queue: deque[Queued] = deque()
        self._tx: Session | None = None
        self._stopping = False
        self._bucket = TokenBucket(config.max_submits_per_second, config.rate_burst)
        self._m_window = metrics.WINDOW_IN_USE.labels(config.name)
        self._m_queued = metrics.QUEUED.labels(config.name)

    # the bind's side ---------------------------------------------------------------------------

    def put(self, request: SubmitRequest) -> Future[SubmitResult]:
        future: Future[SubmitResult] = Future()
        body = self._esme.encode_submit(request)
        item = Queued(request, body, future, time.monotonic() + self._config.queue_timeout)
        with self._cond:
            refusal = ""
            if self._stopping:
                refusal = "bind is stopping; not sent"
            elif len(self._queue) >= self._config.max_queued:
                refusal = "bind queue is full; not sent"
            if refusal:
                item.started = future.set_running_or_notify_cancel()
                self._tally.finish(item, SubmitResult(SubmitOutcome.RETRY, detail=refusal))
                return future
            self._queue.append(item)
            self._m_queued.set(len(self._queue))
            self._cond.notify_all()
        return future

    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def attach(self, tx: Session | None) -> None:
        """Write to ``tx`` from now on (None: nowhere, the link is down)."""
        with self._cond:
            self._tx = tx
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        """Take no more submits; those still queued resolve as RETRY."""
        with self._cond:
            self._stopping = True
            while self._queue:
                item = self._queue.popleft()
                if self._start(item):
                    self._tally.finish(
                        item,
                        SubmitResult(
                            SubmitOutcome.RETRY, detail="bind stopped before this submit was written"
                        ),
                    )
            self._m_queued.set(0)
            self._cond.notify_all()

    # the sender thread -------------------------------------------------------------------------

    def run(self) -> None:
        while True:
            picked = self._next_to_send()
            if picked is None:
                return
            item, session = picked
            try:
                self._send_one(item, session)
            except Exception as exc:  # a bug must fail one submit, not stop the sender
                log.exception("smpp %s: sender failed", self._label)
                self._tally.finish(
                    item, SubmitResult(SubmitOutcome.UNKNOWN, detail=f"sender failed: {exc!r}")
                )

    def _next_to_send(self) -> tuple[Queued, Session] | None:
        """Wait until a submit can be written; None when the bind is stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                while self._queue and self._queue[0].deadline <= now:
                    item = self._queue.popleft()
                    if self._start(item):
                        self._tally.finish(
                            item, SubmitResult(SubmitOutcome.RETRY, detail="not written within queue_timeout")
                        )
                tx = self._tx
                paused_until = self._esme.paused_until
                if self._queue and tx is not None and tx.alive and now >= paused_until:
                    item = self._queue.popleft()
                    self._m_queued.set(len(self._queue))
                    if not self._start(item):
                        continue
                    return item, tx
                wait = 0.1
                if paused_until > now:
                    wait = min(wait, paused_until - now)
                self._cond.wait(wait)

    @staticmethod
    def _start(item: Queued) -> bool:
        """Mark the future running; False when the caller cancelled it."""
        if item.started:
            return True
        item.started = True
        return item.future.set_running_or_notify_cancel()

    def _requeue(self, item: Queued) -> None:
        """Put back, at the head of the queue, a submit taken but not written."""
        with self._cond:
            if self._stopping:
                self._tally.finish(
                    item, SubmitResult(SubmitOutcome.RETRY, detail="bind stopped before it was written")
                )
                return
            self._queue.appendleft(item)
            self._cond.notify_all()

    def _release(self) -> None:
        with self._core:
            self._esme.window.release()
            self._core.notify_all()

    def _send_one(self, item: Queued, session: Session) -> None:
        """Take a window slot, a rate token and sit out any throttling pause, then write.

        A submit that cannot be written (stop, link lost meanwhile) goes back to the queue head.
        """
        if not self._acquire_slot(session):
            self._requeue(item)
            return
        delay = self._bucket.reserve()
        stopped = delay > 0 and self._stop_event.wait(delay)
        if stopped or not self._wait_unpaused() or not session.alive:
            self._bucket.refund()
            self._release()
            self._requeue(item)
            return
        self._write_submits([item, *self._ready_behind(session)], session)

    def _wait_unpaused(self) -> bool:
        """Sit out a throttling back-off that began while this submit waited; False on stop."""
        while True:
            pause = self._esme.paused_until - time.monotonic()
            if pause <= 0:
                return True
            if self._stop_event.wait(pause):
                return False

    def _acquire_slot(self, session: Session) -> bool:
        window = self._esme.window
        with self._core:
            while not window.reserve():
                if self._stopping or not session.alive:
                    return False
                self._core.wait(0.1)
            if self._stopping or not session.alive:
                window.release()
                self._core.notify_all()
                return False
        return True

    def _ready_behind(self, session: Session) -> list[Queued]:
        """Submits queued behind the one being written that can go in the same write.

        Each needs a free window slot and a rate token now; the first that does not get both
        (or has expired, or meets a throttling pause) stays queued for the usual path. One
        ``sendall`` for a burst instead of one per PDU: fewer system calls, and fewer hand-offs
        of the GIL between the sender and the threads feeding it.
        """
        burst: list[Queued] = []
        window = self._esme.window
        while len(burst) < MAX_BURST - 1:
            with self._cond:
                now = time.monotonic()
                if (
                    self._stopping
                    or not session.alive
                    or not self._queue
                    or self._queue[0].deadline <= now
                    or self._esme.paused_until > now
                ):
                    break
                with self._core:
                    if not window.reserve():
                        break
                item = self._queue.popleft()
                self._m_queued.set(len(self._queue))
                if not self._start(item):
                    self._release()  # cancelled by its caller
                    continue
            if self._bucket.reserve() > 0:
                self._bucket.refund()
                self._release()
                self._requeue(item)
                break
            burst.append(item)
        return burst

    def _write_submits(self, items: list[Queued], session: Session) -> None:
        """Write submits whose window slots are reserved, in one write; registered before it."""
        data = bytearray()
        now = time.monotonic()
        esme = self._esme
        with self._core:
            written = [esme.submit_sm(item, item.body, now, data) for item in items]
        try:
            session.write(bytes(data))
        except OSError as exc:
            with self._core:
                lost = esme.write_failed(written, f"write failed: {exc}")
                in_use = esme.window.in_use()
                self._core.notify_all()
            self._tally.finish_all(lost)
            self._m_window.set(in_use)
            self._session_lost(session, f"write failed: {exc}")
            return
        self._tally.count("submits_written", len(written))
        self._m_window.set(esme.window.in_use())  # after the write: resps may have come in
