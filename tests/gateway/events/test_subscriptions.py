"""Subscriptions (gateway.events.subscriptions): secret rotation, in one process on SQLite."""

from __future__ import annotations

from pathlib import Path

from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.events import subscriptions
from gateway.events.runtime import Runtime, limits_from_settings

from .harness import make_tls, running_receiver
from .inprocess import activate, deliver_all, dispatch, sms, subscribe


def test_secret_rotation_sends_both_signatures(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path)) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        activate(database, sub.id)
        with database.session() as session:
            rotated = subscriptions.rotate_secret(session, sub.id, limits_from_settings(settings))
        assert rotated.secret != sub.secret
        receiver.secrets = [sub.secret, rotated.secret]  # the receiver checks each one verifies
        sms(database, resource_id)
        deliver_all(rt, dispatch(rt))
        assert receiver.errors == []
        assert len(receiver.received) == 1
        assert len(receiver.received[0].headers["webhook-signature"].split(" ")) == 2
