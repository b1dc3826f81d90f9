"""Fan-out and scheduling (gateway.events.fanout), in one process on SQLite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.events import builder, fanout
from gateway.events.lifecycle import DeliveryStatus
from gateway.events.models import Delivery, DeliveryAttempt, OutboxEvent
from gateway.events.runtime import Runtime
from gateway.resources.service import create_resource
from tests.support.postgres import Postgres

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


def test_purge_runs_batches_until_none_is_left_or_its_budget_is_spent(
    database: Database, settings: Settings, rt: Runtime, resource_id: str
) -> None:
    _purge_in_batches(database, settings, rt, resource_id)


@pytest.mark.postgres
def test_purge_on_postgresql_takes_deliveries_and_attempts_by_cascade(
    postgres: Postgres, settings: Settings
) -> None:
    database = Database(postgres.new_database())
    runtime = Runtime.from_settings(settings, database)
    try:
        with database.session() as session:
            resource_id = create_resource(session, "app-pg", "https://gateway.test/").id
        _purge_in_batches(database, settings, runtime, resource_id)
    finally:
        runtime.client.close()
        database.dispose()


def _purge_in_batches(database: Database, settings: Settings, rt: Runtime, resource_id: str) -> None:
    sub = subscribe(database, settings, resource_id, "https://localhost:9/never")
    activate(database, sub.id)
    old = [sms(database, resource_id) for _ in range(25)]
    fresh = sms(database, resource_id)
    dispatch(rt)
    with database.session() as session:
        session.execute(
            Delivery.__table__.update()
            .where(Delivery.event_id.in_(old))
            .values(status=DeliveryStatus.DELIVERED)
        )
        session.execute(
            OutboxEvent.__table__.update()
            .where(OutboxEvent.id.in_(old))
            .values(dispatched_at=utcnow() - timedelta(days=40))
        )
        for delivery in session.scalars(select(Delivery)):
            session.add(
                DeliveryAttempt(
                    delivery_id=delivery.id,
                    subscription_id=sub.id,
                    event_id=delivery.event_id,
                    number=1,
                    started_at=utcnow(),
                    status_code=200,
                    latency_ms=3,
                    outcome="delivered",
                )
            )
    cutoff = utcnow() - timedelta(days=30)
    assert fanout.purge_finished_within(database, cutoff, budget_seconds=0.0, limit=10) == fanout.Purge(
        10, True
    )
    assert fanout.purge_finished_within(database, cutoff, budget_seconds=60.0, limit=10) == fanout.Purge(
        15, False
    )
    with database.session() as session:
        assert session.scalars(select(OutboxEvent.id)).all() == [fresh]
        assert [d.event_id for d in session.scalars(select(Delivery))] == [fresh]
        assert [a.event_id for a in session.scalars(select(DeliveryAttempt))] == [fresh]
