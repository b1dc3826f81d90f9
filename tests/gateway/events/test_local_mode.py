"""``trunkline up``'s embedded mode: SQLite and kombu's filesystem queue, no Redis."""

from __future__ import annotations

from pathlib import Path

from gateway.core.db import Database, utcnow
from gateway.core.migrate import upgrade
from gateway.core.settings import Settings
from gateway.events import builder, samples, service, subscriptions
from gateway.events.models import SubscriptionStatus
from gateway.events.runtime import limits_from_settings, policy_from_settings
from gateway.resources.service import create_resource
from gateway.supervisor import local_roles

from .harness import Stack, make_tls, running_receiver, wait_until


def test_up_runs_the_event_worker() -> None:
    roles = {role.name: role.argv[3:] for role in local_roles()}
    assert roles["worker"] == ["worker", "--metrics-port", "9464"]


def test_worker_delivers_with_sqlite_and_the_filesystem_queue(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'data' / 'trunkline.db'}"
    stack = Stack(database_url, "", tmp_path, make_tls(tmp_path))
    env = stack.settings_env()
    del env["TRUNKLINE_BROKER_URL"]
    settings = Settings(**{k.removeprefix("TRUNKLINE_").lower(): v for k, v in env.items()})
    database = Database(database_url)
    upgrade(database.engine)
    try:
        with running_receiver(stack.tls) as receiver:
            with database.session() as session:
                resource_id = create_resource(session, "local-app", "https://gateway.test/").id
                sub = subscriptions.create_subscription(
                    session,
                    resource_id,
                    subscriptions.SubscriptionSpec(receiver.url, [builder.SMS_RECEIVED]),
                    policy_from_settings(settings),
                    limits_from_settings(settings),
                )
            receiver.secrets = [sub.secret]
            stack.settings_env = lambda: env  # type: ignore[method-assign]
            stack.start_worker()

            def active() -> bool:
                with database.session() as session:
                    return subscriptions.get_subscription(session, sub.id).status == SubscriptionStatus.ACTIVE

            wait_until(active, 20, what="validation through the filesystem queue")
            with database.session() as session:
                subject, data = samples.sample_event(builder.SMS_RECEIVED, utcnow())
                event_id = service.publish(
                    session,
                    resource_id=resource_id,
                    event_type=builder.SMS_RECEIVED,
                    subject=subject,
                    data=data,
                )
            wait_until(lambda: receiver.event_ids() == [event_id], 20, what="local delivery")
            assert receiver.errors == []
            assert (tmp_path / "data" / "broker").is_dir()
    finally:
        stack.stop_workers()
        database.dispose()
