"""The publish seam: producers (SMS, voice) write events to the outbox in their own transaction.

::

    from gateway.events.service import publish

    with database.session() as session:
        message.status = "delivered"           # the state change ...
        publish(                                # ... and its event, in the same transaction
            session,
            resource_id=message.resource_id,
            event_type="Microsoft.Communication.SMSDeliveryReportReceived",
            subject=phone_subject(message.to),
            data=sms_delivery_report_data(...),
        )

If the transaction rolls back, the event never existed; once it commits, it is delivered at
least once to every matching, validated subscription (same id on every retry). The rest of the
pipeline: :mod:`gateway.events.fanout` (outbox to deliveries), :mod:`gateway.events.sender`
(one attempt each), :mod:`gateway.events.lifecycle` (a delivery's states).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.db import new_uuid, utcnow
from gateway.events import repository
from gateway.events.repository import wakeup


def publish(
    session: Session,
    *,
    resource_id: str,
    event_type: str,
    subject: str,
    data: dict[str, Any],
    event_time: datetime | None = None,
    event_id: str | None = None,
    subscription_id: str | None = None,
    prompt: bool = False,
) -> str:
    """Write an event to the outbox in the caller's transaction and return its id.

    ``data`` must be JSON-serialisable and already in the ACS shape for ``event_type`` (see
    :mod:`gateway.events.builder`). Nothing is sent until the caller commits. With
    ``subscription_id`` the event goes to that subscription only (a call's callback). A
    ``prompt`` event wakes the dispatcher at the commit instead of at its next poll (on
    PostgreSQL; gateway.events.wakeup): for events someone is waiting on now.
    """
    if not event_type:
        raise ValueError("event_type is required")
    if event_time is not None and event_time.tzinfo is None:
        raise ValueError("event_time must be timezone-aware")
    json.dumps(data)  # fail in the producer, not in the worker
    event_id = event_id or new_uuid()
    # One INSERT now rather than an ORM object for the unit of work: a call's events are one per
    # transaction, and the flush's bookkeeping cost more than the statement (sip controller
    # profile, docs/performance.md). Many events at once go through publish_many.
    if session.new:
        session.flush()  # what the row refers to (a subscription made in this transaction) first
    repository.insert_events(
        session,
        [
            {
                "id": event_id,
                "resource_id": resource_id,
                "event_type": event_type,
                "subject": subject,
                "subscription_id": subscription_id,
                "data": data,
                "event_time": event_time or utcnow(),
                "created_at": utcnow(),
            }
        ],
    )
    if prompt:
        wakeup.notify_on_commit(session)
    return event_id


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event for :func:`publish_many`: what :func:`publish` takes, id and time required."""

    resource_id: str
    event_type: str
    subject: str
    data: dict[str, Any]
    event_time: datetime
    event_id: str


def publish_many(session: Session, events: Sequence[NewEvent]) -> None:
    """:func:`publish` for many events at once: one INSERT, no ORM objects (for hot paths)."""
    if not events:
        return
    now = utcnow()
    rows = []
    for event in events:
        if not event.event_type:
            raise ValueError("event_type is required")
        if event.event_time.tzinfo is None:
            raise ValueError("event_time must be timezone-aware")
        json.dumps(event.data)  # fail in the producer, not in the worker
        rows.append(
            {
                "id": event.event_id,
                "resource_id": event.resource_id,
                "event_type": event.event_type,
                "subject": event.subject,
                "data": event.data,
                "event_time": event.event_time,
                "created_at": now,
            }
        )
    repository.insert_events(session, rows)
