"""The publish seam (gateway.events.service): an event is part of its producer's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.core.db import Database
from gateway.events import builder, service
from gateway.events.models import OutboxEvent

from .inprocess import sms


def test_publish_is_part_of_the_callers_transaction(database: Database, resource_id: str) -> None:
    class Boom(Exception):
        pass

    def publish_then_fail() -> None:
        with database.session() as session:
            service.publish(
                session, resource_id=resource_id, event_type=builder.SMS_RECEIVED, subject="/x", data={"a": 1}
            )
            raise Boom

    with pytest.raises(Boom):
        publish_then_fail()
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    event_id = sms(database, resource_id, event_id="Incoming_fixed")
    assert event_id == "Incoming_fixed"
    with database.session() as session:
        row = session.get(OutboxEvent, event_id)
        assert row is not None
        assert row.dispatched_at is None
    with pytest.raises(TypeError), database.session() as session:
        service.publish(session, resource_id=resource_id, event_type="t", subject="s", data={"x": object()})
