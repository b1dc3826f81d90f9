"""Claiming deliveries for an attempt, giving back those not attempted, recording the results.

A claim is a lease (``claimed_until``) on pending, due rows, so a delivery is attempted by one
worker at a time; results are written in one statement of each kind, with the row changes
chosen by :mod:`gateway.events.lifecycle`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.core.db import new_uuid
from gateway.events import batching, builder, lifecycle, repository
from gateway.events.builder import DeliverySchema, Event, TopicNamer
from gateway.events.lifecycle import AttemptResult, Decision
from gateway.events.models import SubscriptionKind
from gateway.events.repository import ClaimedRow
from gateway.events.subscriptions import secrets_in_use


@dataclass(frozen=True)
class DeliveryWork:
    delivery_id: str
    subscription_id: str
    resource_id: str
    event: Event
    event_created_at: datetime
    endpoint_url: str
    delivery_schema: DeliverySchema
    topic: str
    secrets: list[str]
    kind: SubscriptionKind
    attempt: int  # this attempt's number, from 1
    max_attempts: int
    expires_at: datetime
    next_attempt_at: datetime
    batch_id: str | None = None
    max_events_per_batch: int = 1
    preferred_batch_bytes: int = 64 * 1024

    @property
    def batching(self) -> bool:
        """Whether its subscription posts batches (callbacks never do: ACS posts them one by one)."""
        return self.kind is SubscriptionKind.WEBHOOK and self.max_events_per_batch > 1


@dataclass(frozen=True)
class BatchWork:
    """The deliveries sent in one HTTP request: one subscription's, oldest event first.

    The attempt's rules (:mod:`gateway.events.lifecycle`) apply to the batch as a whole: its
    attempt number is the highest of its deliveries' (they are equal but for rows older than
    batching) and it expires with its oldest event, so a batch is retried and dead-lettered as
    one.
    """

    batch_id: str | None  # None: one event of a subscription that does not batch
    works: list[DeliveryWork]
    elements: list[bytes]  # the events rendered for the body (empty for callbacks)

    @property
    def first(self) -> DeliveryWork:
        return self.works[0]

    @property
    def message_id(self) -> str:
        """Its ``webhook-id``: the event's id for one event (as before batching), else the batch's
        id, fixed at its first claim so every retry carries the same one."""
        if len(self.works) == 1 or self.batch_id is None:
            return self.works[0].event.id
        return self.batch_id

    @property
    def as_batch(self) -> bool:
        """Posted as a batch (an array; CloudEvents' batch content type): formed by a batching
        subscription, even if the subscription stopped batching since (its retries stay as
        they were first sent)."""
        return self.batch_id is not None

    @property
    def attempt(self) -> int:
        return max(w.attempt for w in self.works)

    @property
    def max_attempts(self) -> int:
        return self.first.max_attempts

    @property
    def expires_at(self) -> datetime:
        return min(w.expires_at for w in self.works)

    @property
    def next_attempt_at(self) -> datetime:
        return self.first.next_attempt_at

    @property
    def delivery_ids(self) -> list[str]:
        return [w.delivery_id for w in self.works]


@dataclass(frozen=True)
class Finished:
    """One finished attempt of a batch (or its expiry before any attempt), ready to be recorded."""

    batch: BatchWork
    result: AttemptResult | None  # None: expired before it could be attempted
    decision: Decision
    started_at: datetime
    finished_at: datetime


def claim(
    session: Session, delivery_ids: Sequence[str], now: datetime, claim_for: timedelta, topic_of: TopicNamer
) -> list[BatchWork]:
    """Take the pending, due deliveries among ``delivery_ids`` (and the rest of their batches)
    for one attempt each, grouped into the batches they are sent in, oldest first.

    Those already finished, not yet due, or claimed by another worker are left out. Deliveries
    of a batching subscription that have no batch yet are packed now (what this task carries,
    up to the subscription's count and size) and their batch ids stored in this transaction, so
    a crash after sending still retries the same batch under the same webhook-id.
    """
    rows = repository.lock_claimable(session, delivery_ids, now)
    if not rows:
        return []
    batches = _group(works_of(rows, now, topic_of))
    repository.mark_claimed(
        session,
        {work.delivery_id: batch.batch_id for batch in batches for work in batch.works},
        now + claim_for,
    )
    return batches


def claimed_batches(rows: Sequence[ClaimedRow], now: datetime, topic_of: TopicNamer) -> list[BatchWork]:
    """The batches of deliveries claimed as they were fanned out (the dispatcher's own threads
    take them without a claim of their own): each alone, as their subscriptions do not batch."""
    works = works_of(rows, now, topic_of)
    if any(work.batching for work in works):
        raise ValueError("deliveries of a batching subscription are packed by their claim")
    return _group(works)


def works_of(rows: Sequence[ClaimedRow], now: datetime, topic_of: TopicNamer) -> list[DeliveryWork]:
    return [
        DeliveryWork(
            delivery_id=row.delivery_id,
            subscription_id=row.subscription_id,
            resource_id=row.resource_id,
            event=Event(
                id=row.event_id,
                event_type=row.event_type,
                subject=row.subject,
                data=row.data,
                event_time=row.event_time,
            ),
            event_created_at=row.event_created_at,
            endpoint_url=row.endpoint_url,
            delivery_schema=DeliverySchema(row.delivery_schema),
            topic=topic_of(row.resource_name),
            secrets=secrets_in_use(row.secret, row.previous_secret, row.previous_secret_expires_at, now),
            kind=SubscriptionKind(row.kind),
            attempt=row.attempts + 1,
            max_attempts=row.max_delivery_attempts,
            expires_at=row.expires_at,
            next_attempt_at=row.next_attempt_at,
            batch_id=row.batch_id,
            max_events_per_batch=row.max_events_per_batch,
            preferred_batch_bytes=row.preferred_batch_size_kb * 1024,
        )
        for row in rows
    ]


def _group(works: Sequence[DeliveryWork]) -> list[BatchWork]:
    """Claimed deliveries (oldest event first) as batches: stored batches as they were formed,
    the rest of a batching subscription's packed by count and size, everything else alone."""
    groups: dict[tuple[str, str], list[DeliveryWork]] = {}  # keeps the order of first appearance
    for work in works:
        if work.batch_id is not None:
            group = ("stored", work.batch_id)
        elif work.batching:
            group = ("new", work.subscription_id)
        else:
            group = ("alone", work.delivery_id)
        groups.setdefault(group, []).append(work)
    batches: list[BatchWork] = []
    for (kind, key), members in groups.items():
        if kind == "alone":
            work = members[0]
            elements = [] if work.kind is SubscriptionKind.CALLBACK else [_element(work)]
            batches.append(BatchWork(None, members, elements))
            continue
        elements = [_element(w) for w in members]
        if kind == "stored":
            batches.append(BatchWork(key, members, elements))
            continue
        first = members[0]
        sizes = [len(e) for e in elements]
        for part in batching.pack(sizes, first.max_events_per_batch, first.preferred_batch_bytes):
            batches.append(
                BatchWork(new_uuid(), members[part.start : part.stop], elements[part.start : part.stop])
            )
    return batches


def _element(work: DeliveryWork) -> bytes:
    return builder.render_event(work.delivery_schema, work.event, work.topic)


def release(session: Session, delivery_ids: Sequence[str]) -> None:
    """Give back claimed deliveries that were not attempted (the scheduler re-enqueues them)."""
    if delivery_ids:
        repository.release_claims(session, delivery_ids)


def record(session: Session, outcomes: Sequence[Finished]) -> None:
    """Store the attempts (one row per delivery of each batch, so each event's log is complete)
    and the deliveries' new states (a batch's deliveries all change alike), one statement of each
    kind."""
    if not outcomes:
        return
    attempts = [
        {
            "id": new_uuid(),
            "delivery_id": work.delivery_id,
            "subscription_id": work.subscription_id,
            "event_id": work.event.id,
            "number": o.batch.attempt,
            "started_at": o.started_at,
            "status_code": o.result.status_code,
            "latency_ms": o.result.latency_ms,
            "error": o.result.error,
            "outcome": o.decision.outcome.value,
        }
        for o in outcomes
        if o.result is not None
        for work in o.batch.works
    ]
    if attempts:
        repository.insert_attempts(session, attempts)
    changes = {}
    for o in outcomes:
        change = lifecycle.after_attempt(o.batch, o.result, o.decision, o.finished_at)
        for delivery_id in o.batch.delivery_ids:
            changes[delivery_id] = change
    repository.update_deliveries(session, changes)
