"""The SMS end-to-end stack, all real processes: ``trunkline api`` (HTTPS), ``trunkline smpp``,
``trunkline worker`` (events, on a private redis-server), the node-smpp SMSC, PostgreSQL, and an
https webhook receiver that verifies signatures and parses events with ``azure-eventgrid``.

The app under test is reached only through the official ``SmsClient`` (and, for what SDK 1.1.0
has no method for, HMAC-signed httpx requests as the SDK signs them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.communication.sms import SmsClient
from sqlalchemy import func, select

from gateway.core.cli_database import migrated_database
from gateway.core.db import Database
from gateway.core.sealed_columns import keyring_of, use_keyring
from gateway.core.settings import Settings
from gateway.events import builder, subscriptions
from gateway.events.models import SubscriptionStatus
from gateway.events.runtime import limits_from_settings, policy_from_settings
from gateway.sms.models import SmsMessage
from tests.e2e.helpers import fast_events_env, free_port, strong_secret, trunkline_env
from tests.e2e.stack import ProcessStack
from tests.gateway.events.harness import Receiver, RedisServer, make_tls, running_receiver, wait_until
from tests.gateway.sms.support import give_number
from tests.support.postgres import throwaway_database
from tests.support.secrets_keys import TEST_SECRETS_KEYS
from tests.support.smsc import SmscProcess, smsc_available

SENDER = "+14255550100"
JOB_GRACE_SECONDS = 6


@dataclass
class SmsStack(ProcessStack):
    tmp: Path
    env: dict[str, str]
    database: Database
    smsc: SmscProcess
    redis: RedisServer
    receiver: Receiver
    port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)

    def kill(self, role: str) -> None:
        process = self.processes.pop(role)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    def sms_client(self) -> SmsClient:
        return SmsClient.from_connection_string(self.resource["connectionString"], retry_total=0)

    def counts(self) -> dict[str, int]:
        with self.database.session() as session:
            rows = session.execute(select(SmsMessage.state, func.count()).group_by(SmsMessage.state))
            return {state: int(count) for state, count in rows}

    def wait_all_final(self, timeout: float = 60.0) -> dict[str, int]:
        def done() -> dict[str, int] | None:
            counts = self.counts()
            return counts if not (counts.get("queued") or counts.get("submitted")) else None

        result: dict[str, int] = wait_until(done, timeout, what="every message final")
        return result


@pytest.fixture(scope="package")
def sms_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmsStack]:
    reason = smsc_available()
    if reason:
        pytest.fail(reason, pytrace=False)
    tmp = tmp_path_factory.mktemp("sms-e2e")
    tls = make_tls(tmp)
    with (
        throwaway_database("trunkline_sms_e2e") as database_url,
        SmscProcess.start(receipts="immediate") as smsc,
        running_receiver(tls) as receiver,
    ):
        redis = RedisServer(tmp)
        port = free_port()
        env = trunkline_env(tmp / "data", port, strong_secret(), database_url=database_url)
        env.update(
            {
                **fast_events_env(redis.url, tls.ca_file),
                "TRUNKLINE_SMS_CLAIM_LEASE_SECONDS": "4",
                # long enough that a message sent within it was sent through its Celery job
                "TRUNKLINE_SMS_JOB_GRACE_SECONDS": str(JOB_GRACE_SECONDS),
                "TRUNKLINE_SMS_RETRY_BASE_SECONDS": "0.2",
                "TRUNKLINE_SMS_RETRY_MAX_SECONDS": "1",
                "TRUNKLINE_SMS_DELIVERY_REPORT_TIMEOUT_SECONDS": "12",
                "TRUNKLINE_SMS_QUOTA_PER_RESOURCE_PER_MINUTE": "100000",
                "TRUNKLINE_SMS_QUOTA_PER_COUNTRY_PER_MINUTE": "100000",
                "TRUNKLINE_SMS_COUNTRY_QUOTAS": "FR=2",
                "TRUNKLINE_LOG_LEVEL": "WARNING",
            }
        )
        # migrated once, before several processes would race to create the schema
        database = migrated_database(database_url)
        stack = SmsStack(tmp, env, database, smsc, redis, receiver, port)
        try:
            stack.start("api", "api", "--host", "127.0.0.1", "--port", str(port))
            created = stack.cli("resources", "create", "sms-e2e", "--json")
            assert created.returncode == 0, created.stderr
            stack.resource = json.loads(created.stdout)
            give_number(database, stack.resource["id"], SENDER)
            added = stack.cli(
                "smpp", "add", "smsc1", "--host", smsc.host, "--port", str(smsc.port),
                "--system-id", smsc.system_id, "--password", smsc.password, "--window", "50",
                "--reconnect-backoff-initial", "0.1", "--reconnect-backoff-max", "0.5", "--json",
            )  # fmt: skip
            assert added.returncode == 0, added.stderr
            assert json.loads(added.stdout)["name"] == "smsc1"
            routed = stack.cli("smpp", "route", "add", "--prefix", "+", "--connection", "smsc1")
            assert routed.returncode == 0, routed.stderr
            listed = stack.cli("smpp", "list", "--json")
            assert [c["name"] for c in json.loads(listed.stdout)] == ["smsc1"]
            settings = Settings(
                webhook_allowed_networks=["127.0.0.0/8"],
                data_dir=tmp / "data",
                database_url=database_url,
                secrets_keys=TEST_SECRETS_KEYS,  # type: ignore[arg-type]
            )
            # Package-scoped: set up before the per-test fixture puts the tests' key in the
            # environment, so the set-up seals and opens secrets with this keyring explicitly.
            use_keyring(keyring_of(settings))
            with database.session() as session:
                subscription = subscriptions.create_subscription(
                    session,
                    stack.resource["id"],
                    subscriptions.SubscriptionSpec(
                        receiver.url, [builder.SMS_RECEIVED, builder.SMS_DELIVERY_REPORT_RECEIVED]
                    ),
                    policy_from_settings(settings),
                    limits_from_settings(settings),
                )
            receiver.secrets = [subscription.secret]
            stack.start("smpp", "smpp")
            stack.start("worker", "worker")

            def active() -> bool:
                with database.session() as session:
                    return (
                        subscriptions.get_subscription(session, subscription.id).status
                        == SubscriptionStatus.ACTIVE
                    )

            wait_until(active, 30, what="the subscription to validate")
            wait_until(smsc.bound_sessions, 20, what="trunkline smpp to bind")
            wait_until(stack.ca_file.exists, 20, what="the API's CA")

            def healthy() -> bool:
                try:
                    with stack.http() as client:
                        return client.get("/health").status_code == 200
                except (httpx.HTTPError, OSError):
                    return False

            wait_until(healthy, 30, what="the API")
            os.environ["REQUESTS_CA_BUNDLE"] = str(stack.ca_file)
            os.environ["SSL_CERT_FILE"] = str(stack.ca_file)
            yield stack
        finally:
            use_keyring(None)
            # Only if still ours: a session fixture (tests/e2e/conftest.py's trunkline) may have
            # set its own CA since, for tests that run after this package.
            for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
                if os.environ.get(name) == str(stack.ca_file):
                    del os.environ[name]
            stack.stop_all()
            redis.stop()
            database.dispose()


@pytest.fixture
def stack(sms_stack: SmsStack, request: pytest.FixtureRequest) -> Iterator[SmsStack]:
    """The session's stack, with the SMSC's records reset and its logs shown on failure."""
    sms_stack.smsc.reset()
    sms_stack.smsc.configure(receipts="immediate")
    return sms_stack
