"""Deliveries and handshakes run on the worker process's own threads, handed over by its own
dispatcher: no broker between the outbox and the attempt.

The broker hop (a task message to Redis, the Celery consumer taking it, its thread pool) cost
the voice callbacks 26/136 ms p50/p99 between the dispatcher and the POST in the media benchmark,
and a sixth of the events worker's CPU (docs/performance.md, "Callbacks without the broker").
It bought nothing the outbox does not already give: the delivery rows are the truth, and a task
lost with this process is found again by any node's scheduler when its lease ends, exactly as a
task lost with the broker is. Celery stays for the deployments that split the roles
(``--no-dispatcher`` / ``--no-deliveries`` nodes), which need a queue between processes.

The backlog is bounded: the dispatcher stops taking outbox rows while this process has more
unfinished tasks than it has threads to spare, so other nodes' dispatchers (SKIP LOCKED) take
them instead.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from gateway.core.db import utcnow
from gateway.events import fanout, validation
from gateway.events.handshake import handshake
from gateway.events.metrics import LOCAL_TASKS
from gateway.events.runtime import Runtime
from gateway.events.sender import ClaimedWork, deliver, deliver_claimed

log = structlog.get_logger("trunkline.events")

# Unfinished tasks allowed per delivery thread before the dispatcher waits.
BACKLOG_PER_THREAD = 4


class LocalDeliveries:
    """A pool of delivery threads fed by this process's dispatcher."""

    def __init__(self, rt: Runtime, threads: int, backlog: int | None = None) -> None:
        self._rt = rt
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="trunkline-delivery")
        self._limit = backlog if backlog is not None else threads * BACKLOG_PER_THREAD
        self._unfinished = 0
        self._changed = threading.Condition()
        # Tasks not started yet, to give back to the scheduler if the process stops first.
        self._waiting: dict[int, tuple[Callable[[Runtime, Any], object], Any]] = {}
        self._tokens = itertools.count()

    @property
    def unfinished(self) -> int:
        with self._changed:
            return self._unfinished

    def deliver(self, tasks: Sequence[Sequence[str]]) -> None:
        """One attempt of each task's deliveries (``deliver`` claims them, as a Celery task does)."""
        for ids in tasks:
            self._submit(deliver, list(ids))

    def deliver_claimed(self, tasks: Sequence[ClaimedWork]) -> None:
        """One attempt of each task's deliveries, claimed already by the dispatcher."""
        for work in tasks:
            self._submit(deliver_claimed, work)

    def validate(self, subscription_ids: Sequence[str]) -> None:
        for subscription_id in subscription_ids:
            self._submit(handshake, subscription_id)

    def wait_for_room(self, timeout: float) -> bool:
        """Whether the dispatcher may hand over more, waiting up to ``timeout`` for it."""
        with self._changed:
            return self._changed.wait_for(lambda: self._unfinished < self._limit, timeout)

    def close(self) -> None:
        """Finish the attempts in flight; give the tasks not started back to the scheduler now
        (rather than when their lease ends)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._changed:
            unstarted = list(self._waiting.values())
            self._waiting.clear()
        for _ in unstarted:
            self._finished()
        deliveries = [d for work, ids in unstarted if work is deliver for d in ids]
        claimed = [d for work, task in unstarted if work is deliver_claimed for d in task.delivery_ids]
        validations = [s for work, s in unstarted if work is handshake]
        if not deliveries and not claimed and not validations:
            return
        try:
            with self._rt.database.session() as session:
                if deliveries:
                    fanout.release_enqueue(session, deliveries, utcnow())
                if claimed:
                    fanout.release_claims(session, claimed)
                if validations:
                    validation.retry_validations_soon(session, validations, utcnow())
        except Exception:
            # Their leases end anyway, and a scheduler sends them then.
            log.exception("could not give unstarted deliveries back", count=len(deliveries))

    def _submit(self, work: Callable[[Runtime, Any], object], argument: object) -> None:
        token = next(self._tokens)
        with self._changed:
            self._unfinished += 1
            self._waiting[token] = (work, argument)
        LOCAL_TASKS.inc()
        try:
            self._executor.submit(self._run, token)
        except RuntimeError:  # shut down: the caller leaves the rows to the scheduler
            with self._changed:
                self._waiting.pop(token, None)
            self._finished()
            raise

    def _run(self, token: int) -> object:
        with self._changed:
            work, argument = self._waiting.pop(token)
        try:
            return work(self._rt, argument)
        except Exception:
            # As a failed Celery task: the claim's lease ends and the scheduler tries again.
            log.exception("local delivery task failed", work=getattr(work, "__name__", str(work)))
            return None
        finally:
            self._finished()

    def _finished(self) -> None:
        LOCAL_TASKS.dec()
        with self._changed:
            self._unfinished -= 1
            self._changed.notify_all()
