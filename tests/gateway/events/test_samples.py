"""Test events (gateway.events.samples), in one process on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.events import builder, fanout, samples
from gateway.events.runtime import Runtime

from .harness import make_tls, running_receiver
from .inprocess import activate, deliver_all, subscribe


def test_test_event_goes_only_to_that_subscription(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path)) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url, types=[builder.INCOMING_CALL])
        other = subscribe(database, settings, resource_id, receiver.url + "2")
        receiver.secrets = [sub.secret]
        with database.session() as session, pytest.raises(Exception, match="pendingValidation"):
            samples.send_test_event(session, sub.id)
        activate(database, sub.id)
        activate(database, other.id)
        with database.session() as session:
            event_id = samples.send_test_event(session, sub.id)
        with database.session() as session:
            due = fanout.due_deliveries(session, utcnow(), rt.enqueue_lease)
        assert len(due) == 1
        deliver_all(rt, due)
        assert receiver.event_ids() == [event_id]
        assert receiver.received[0].event_type == builder.INCOMING_CALL
        assert receiver.errors == []
