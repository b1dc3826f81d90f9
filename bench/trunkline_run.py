"""Trunkline's side of bench/sms_vs_kannel.py: one run of ``trunkline api`` + ``trunkline smpp``
(+ ``trunkline worker`` and a webhook subscription) on a fresh PostgreSQL database, loaded by wrk.

bench/sms.py part (c) (bench/sms_pipeline.py) drives the same processes; its database set-up,
signed-request wrk script and state counts are reused here.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.api import WRK_THREADS
from bench.load_runs import (
    measure,
    postgres_pids,
    receiver_answers,
    receiver_count,
    run_wrk,
    start_receiver,
    wait_until,
)
from bench.pgstats import keep_statistics
from bench.procstat import descendants
from bench.side_by_side import RunFigures, wrk_stop_after
from bench.sms_pipeline import REPO, count_state, prepared, resource_key, wrk_script
from gateway.core.db import Database
from tests.e2e.helpers import free_port, stop_process, strong_secret, trunkline_env
from tests.gateway.events.harness import RedisServer
from tests.support.smsc import SmscProcess


def subscribe(database: Database, resource_id: str, url: str, max_events_per_batch: int) -> str:
    """An Event Grid subscription of ``resource_id`` to its delivery reports at ``url``."""
    from gateway.core.settings import Settings
    from gateway.events import builder, subscriptions
    from gateway.events.runtime import limits_from_settings, policy_from_settings

    settings = Settings(webhook_allowed_networks=["127.0.0.0/8"])
    with database.session() as session:
        created = subscriptions.create_subscription(
            session,
            resource_id,
            subscriptions.SubscriptionSpec(
                url,
                [builder.SMS_DELIVERY_REPORT_RECEIVED],
                max_events_per_batch=max_events_per_batch,
            ),
            policy_from_settings(settings),
            limits_from_settings(settings),
        )
        return str(created.id)


def subscription_active(database: Database, subscription_id: str) -> bool:
    from gateway.events import subscriptions
    from gateway.events.models import SubscriptionStatus

    with database.session() as session:
        return bool(
            subscriptions.get_subscription(session, subscription_id).status == SubscriptionStatus.ACTIVE
        )


def run_trunkline(
    smsc: SmscProcess,
    count: int,
    connections: int,
    window: int,
    *,
    webhook: bool,
    max_events_per_batch: int,
    worker_concurrency: int,
) -> RunFigures:
    binds_before = smsc.counter("binds")
    with (
        prepared("postgresql", smsc, window) as (database, resource_id),
        TemporaryDirectory(prefix="bench-trunkline-") as tmp_name,
        keep_statistics(database.url) as keeper,  # ANALYZE every 2 s (bench/pgstats.py)
    ):
        tmp = Path(tmp_name)
        port = free_port()
        env = trunkline_env(tmp / "data", port, strong_secret(), database_url=database.url)
        redis = RedisServer(tmp)
        env.update(
            TRUNKLINE_BROKER_URL=redis.url,
            TRUNKLINE_LOG_LEVEL="WARNING",
            TRUNKLINE_SMS_QUOTA_PER_RESOURCE_PER_MINUTE="0",
            TRUNKLINE_SMS_QUOTA_PER_COUNTRY_PER_MINUTE="0",
        )
        processes: dict[str, subprocess.Popen[bytes]] = {}
        log = (tmp / "procs.log").open("wb")

        def start(name: str, *command: str) -> None:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "gateway", *command],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        try:
            receiver_port = free_port()
            if webhook:
                from gateway.core.tls import ensure_local_tls

                tls = ensure_local_tls(tmp / "receiver-tls", ["localhost"])
                env.update(
                    TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
                    TRUNKLINE_WEBHOOK_CA_BUNDLE=str(tls.ca_file),
                )
                processes["receiver"] = start_receiver(
                    receiver_port, (tls.cert_file, tls.key_file), tmp / "receiver.log"
                )
                receiver_context = ssl.create_default_context(cafile=str(tls.ca_file))
                receiver_context.check_hostname = False
                wait_until("the receiver", lambda: receiver_answers(receiver_port, receiver_context), 30, 0.1)
                start("worker", "worker", f"--concurrency={worker_concurrency}")
                subscription = subscribe(
                    database, resource_id, f"https://localhost:{receiver_port}/hook", max_events_per_batch
                )
                wait_until(
                    "the subscription's validation",
                    lambda: subscription_active(database, subscription),
                    60,
                    0.2,
                )
            start("api", "api", "--host", "127.0.0.1", "--port", str(port))
            start("smpp", "smpp")
            key = resource_key(env)
            wait_until("the API", lambda: _healthy(port, tmp / "data" / "tls" / "ca.pem"), 60, 0.1)
            wait_until("the SMPP bind", lambda: smsc.counter("binds") > binds_before, 60, 0.1)
            script = tmp / "sms.lua"
            script.write_text(wrk_script(port, key, count) + wrk_stop_after(count, WRK_THREADS))

            def load() -> tuple[int, float]:
                answered, failed, cpu = run_wrk(f"https://127.0.0.1:{port}", script, connections)
                if failed:
                    print(f"    trunkline: {failed} requests failed")
                # Accepted: what is stored, durably (wrk's extra in-flight requests repeat early
                # repeatability ids and are answered from the stored messages).
                del answered
                return count_state(database, "queued", "submitted", "delivered", "failed", "expired"), cpu

            groups = {name: _tree(process.pid) for name, process in processes.items()}
            analyzer = keeper.pid if keeper is not None else None
            groups["postgres"] = lambda: [
                pid for pid in postgres_pids(database.engine.url.database or "") if pid != analyzer
            ]
            # its ANALYZEs apart: autovacuum's work, not the gateway's
            groups["analyze"] = lambda: [analyzer] if analyzer is not None else []
            groups["redis"] = lambda: [redis.process.pid] if redis.process else []
            groups["smsc"] = lambda: [smsc.process.pid]
            return measure(
                groups,
                load,
                lambda accepted: count_state(database, "delivered", "failed", "expired") >= accepted,
                (lambda accepted: receiver_count(receiver_port, receiver_context) >= accepted)
                if webhook
                else None,
                "webhook" if webhook else "events",
            )
        finally:
            for process in processes.values():
                stop_process(process)
            redis.stop()
            log.close()


def _tree(pid: int) -> Callable[[], list[int]]:
    return lambda: descendants(pid)


def _healthy(port: int, ca: Path) -> bool:
    if not ca.exists():
        return False
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/health", timeout=2, context=context) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
