"""Fan-out and scheduling (gateway.events.fanout), in one process on SQLite."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.events import builder, fanout
from gateway.events.lifecycle import DeliveryStatus
from gateway.events.models import Delivery, OutboxEvent
from gateway.events.runtime import Runtime
from gateway.resources.service import create_resource

from .inprocess import activate, dispatch, sms, subscribe


def test_fan_out_honours_types_subject_filters_and_validation(
    database: Database, settings: Settings, rt: Runtime, resource_id: str
) -> None:
    all_types = subscribe(database, settings, resource_id, "https://localhost:1/a")
    calls_only = subscribe(
        database, settings, resource_id, "https://localhost:1/b", types=[builder.INCOMING_CALL]
    )
    filtered = subscribe(
        database, settings, resource_id, "https://localhost:1/c", subject_ends_with="15550001111"
    )
    pending = subscribe(database, settings, resource_id, "https://localhost:1/d")
    for sub in (all_types, calls_only, filtered):
        activate(database, sub.id)
    with database.session() as session:
        other = create_resource(session, "app-two", "https://gateway.test/").id
    sms(database, resource_id, to="+15550001111")
    sms(database, resource_id, to="+15559999999")
    sms(database, other)
    ids = dispatch(rt)
    with database.session() as session:
        rows = session.scalars(select(Delivery).where(Delivery.id.in_(ids))).all()
        by_sub: dict[str, int] = {}
        for row in rows:
            by_sub[row.subscription_id] = by_sub.get(row.subscription_id, 0) + 1
        assert by_sub == {all_types.id: 2, filtered.id: 1}
        assert pending.id not in by_sub
        assert session.scalar(select(func.count()).where(OutboxEvent.dispatched_at.is_(None))) == 0
    assert dispatch(rt) == []


def test_finished_events_are_purged_after_retention(
    database: Database, settings: Settings, rt: Runtime, resource_id: str
) -> None:
    sub = subscribe(database, settings, resource_id, "https://localhost:9/never")
    activate(database, sub.id)
    done, waiting, fresh = (sms(database, resource_id) for _ in range(3))
    dispatch(rt)
    with database.session() as session:
        for event_id, status in ((done, DeliveryStatus.DELIVERED), (waiting, DeliveryStatus.PENDING)):
            session.execute(
                Delivery.__table__.update().where(Delivery.event_id == event_id).values(status=status)
            )
        session.execute(
            OutboxEvent.__table__.update()
            .where(OutboxEvent.id.in_([done, waiting]))
            .values(dispatched_at=utcnow() - timedelta(days=40))
        )
    with database.session() as session:
        assert fanout.purge_finished(session, utcnow() - timedelta(days=30)) == 1
    with database.session() as session:
        assert session.get(OutboxEvent, done) is None
        assert session.get(OutboxEvent, waiting) is not None  # still pending somewhere
        assert session.get(OutboxEvent, fresh) is not None  # too recent
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2
