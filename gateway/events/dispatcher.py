"""The dispatcher loop of ``trunkline worker``: hands outbox rows to the delivery threads (this
process's own, :mod:`gateway.events.local`, or the broker's Celery workers), re-enqueues due or
lost deliveries, starts handshakes, purges old finished events.

Several may run (one per worker node): rows are taken with SKIP LOCKED on PostgreSQL, and
SQLite serialises writers. The broker is never the truth: a task that cannot be sent leaves its
rows for a later pass; so does a task lost with this process's own delivery threads.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from celery import Celery

from gateway.core.db import utcnow
from gateway.core.loop_thread import LoopThread
from gateway.events import fanout, validation
from gateway.events.local import LocalDeliveries
from gateway.events.metrics import EVENTS_PUBLISHED
from gateway.events.repository import ClaimedRow, QueuedDelivery
from gateway.events.runtime import Runtime
from gateway.events.sender import ClaimedWork
from gateway.events.tasks import DELIVER_TASK, VALIDATE_TASK, send
from gateway.events.wakeup import DispatcherWakeup

log = structlog.get_logger("trunkline.events")

# Old finished events are purged once a minute, at most PURGE_BUDGET_SECONDS of the dispatcher's
# time a pass; a pass that ran out of budget is followed by another PURGE_AGAIN_SECONDS later (a
# quarter of the dispatcher's time at most while it catches up).
PURGE_EVERY_SECONDS = 60.0
PURGE_BUDGET_SECONDS = 0.25
PURGE_AGAIN_SECONDS = 1.0


def batches(deliveries: Sequence[QueuedDelivery], size: int) -> list[list[str]]:
    """Delivery ids grouped by subscription, at most ``size`` per task (one slow endpoint then
    holds up only its own events), or the subscription's events per batch when that is more
    (a task is where a batch forms: the worker packs what one task carries)."""
    by_subscription: dict[str, list[str]] = {}
    per_task: dict[str, int] = {}
    for delivery_id, subscription_id, max_events_per_batch in deliveries:
        by_subscription.setdefault(subscription_id, []).append(delivery_id)
        per_task[subscription_id] = max(size, max_events_per_batch)
    return [
        ids[i : i + per_task[subscription_id]]
        for subscription_id, ids in by_subscription.items()
        for i in range(0, len(ids), per_task[subscription_id])
    ]


def enqueue_deliveries(
    app: Celery, rt: Runtime, deliveries: Sequence[QueuedDelivery], local: LocalDeliveries | None = None
) -> bool:
    """Hand delivery tasks to ``local`` threads or send them to the broker; on broker failure,
    hand them back to the scheduler soon."""
    if not deliveries:
        return True
    tasks = batches(deliveries, rt.settings.events_delivery_batch_size)
    try:
        if local is not None:
            local.deliver(tasks)
        else:
            send(app, DELIVER_TASK, tasks)
    except Exception as exc:  # kombu/redis raise many types while the broker is away
        log.warning(
            "deliveries not handed over; the scheduler sends them again",
            error=str(exc),
            count=len(deliveries),
            via="local threads" if local is not None else "broker",
        )
        with rt.database.session() as session:
            fanout.release_enqueue(
                session, [d.delivery_id for d in deliveries], utcnow() + timedelta(seconds=1)
            )
        return False
    return True


def hand_claimed(rt: Runtime, rows: Sequence[ClaimedRow], claim_ends: float, local: LocalDeliveries) -> None:
    """Hand deliveries claimed at fan-out to ``local`` threads, grouped as :func:`batches`
    groups the others; if they cannot take them (stopping), release the claims for the
    scheduler."""
    by_id = {row.delivery_id: row for row in rows}
    queued = [QueuedDelivery(row.delivery_id, row.subscription_id) for row in rows]
    tasks = [
        ClaimedWork([by_id[delivery_id] for delivery_id in ids], claim_ends)
        for ids in batches(queued, rt.settings.events_delivery_batch_size)
    ]
    try:
        local.deliver_claimed(tasks)
    except Exception as exc:
        log.warning("claimed deliveries not handed over; the scheduler sends them", error=str(exc))
        with rt.database.session() as session:
            fanout.release_claims(session, list(by_id))


def enqueue_validations(
    app: Celery, rt: Runtime, ids: Sequence[str], local: LocalDeliveries | None = None
) -> None:
    """Hand handshake tasks to ``local`` threads or send them to the broker; on broker failure,
    hand them back to the scheduler soon."""
    if not ids:
        return
    try:
        if local is not None:
            local.validate(ids)
        else:
            send(app, VALIDATE_TASK, list(ids))
    except Exception as exc:
        log.warning("broker unavailable; validations will be retried", error=str(exc))
        with rt.database.session() as session:
            validation.retry_validations_soon(session, ids, utcnow())


class Dispatcher(LoopThread):
    """The loop, on a thread of its own. With ``local``, its tasks run on this process's delivery
    threads; without, they go to the broker."""

    thread_name = "trunkline-dispatcher"

    def __init__(
        self, app: Celery, rt: Runtime, batch: int = 500, local: LocalDeliveries | None = None
    ) -> None:
        self.app = app
        self.rt = rt
        self.batch = batch
        self.local = local
        super().__init__()
        self.wakeup = DispatcherWakeup(rt.database.url, self.stop)
        self._next_purge = 0.0

    def run_once(self, *, schedule: bool = True) -> int:
        """One pass; returns how much work it found. ``schedule``: also look for deliveries
        and handshakes that came due (every pass would cost two transactions per wake-up)."""
        claim_ends = time.monotonic() + self.rt.claim_for.total_seconds()  # no later than the rows'
        now = utcnow()
        lease = self.rt.enqueue_lease
        claim_for = self.rt.claim_for if self.local is not None else None
        with self.rt.database.session() as session:
            dispatched = fanout.dispatch_pending(session, now, lease, self.batch, claim_for)
        for event_type in dispatched.event_types:
            EVENTS_PUBLISHED.labels(event_type).inc()
        if dispatched.claimed:
            assert self.local is not None
            hand_claimed(self.rt, dispatched.claimed, claim_ends, self.local)
        enqueue_deliveries(self.app, self.rt, dispatched.deliveries, self.local)
        found = len(dispatched.event_types)
        if schedule:
            found += self._schedule(now)
        return found

    def _schedule(self, now: datetime) -> int:
        """Retries whose backoff ended, tasks lost with the broker, replays, due handshakes; old
        finished events purged once a minute."""
        lease = self.rt.enqueue_lease
        with self.rt.database.session() as session:
            due = fanout.due_deliveries(session, now, lease, self.batch)
        with self.rt.database.session() as session:
            validations = validation.due_validations(
                session, now, self.rt.claim_for + timedelta(seconds=self.rt.settings.webhook_timeout_seconds)
            )
        enqueue_deliveries(self.app, self.rt, due, self.local)
        enqueue_validations(self.app, self.rt, validations, self.local)
        if time.monotonic() >= self._next_purge:
            keep = timedelta(days=self.rt.settings.events_retention_days)
            purge = fanout.purge_finished_within(self.rt.database, now - keep, PURGE_BUDGET_SECONDS)
            # Behind (a backlog, or more events a minute than one pass removes): again soon.
            self._next_purge = time.monotonic() + (PURGE_AGAIN_SECONDS if purge.more else PURGE_EVERY_SECONDS)
            if purge.purged:
                log.info("finished events purged", count=purge.purged, more=purge.more)
        return len(due) + len(validations)

    def loop(self) -> None:
        interval = self.rt.settings.events_dispatch_interval_seconds
        every = self.rt.settings.events_schedule_interval_seconds
        next_schedule = 0.0
        while not self.stop.is_set():
            if self.local is not None and not self.local.wait_for_room(interval):
                continue  # its threads are behind: other nodes' dispatchers take the rows meanwhile
            schedule = time.monotonic() >= next_schedule
            if schedule:
                next_schedule = time.monotonic() + every
            try:
                found = self.run_once(schedule=schedule)
            except Exception:
                log.exception("dispatcher pass failed")
                found = 0
                self.stop.wait(1.0)
            if found < self.batch:
                self.wakeup.wait(min(interval, max(0.0, next_schedule - time.monotonic())))
        self.wakeup.close()
