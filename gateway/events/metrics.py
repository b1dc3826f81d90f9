"""Prometheus metrics for the event pipeline."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import redis
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.core.broker import broker_url
from gateway.core.celery_app import EVENTS_QUEUE
from gateway.core.db import Database
from gateway.core.metrics import owned_by
from gateway.core.settings import Settings
from gateway.events.lifecycle import FailureKind
from gateway.events.repository import queue_depth

EVENTS_PUBLISHED = Counter(
    "trunkline_events_published_total", "Outbox events fanned out by the dispatcher", ["event_type"]
)
DELIVERIES = Counter(
    "trunkline_event_deliveries_total",
    "Finished deliveries and scheduled retries, by outcome (delivered, retry, deadLetter)",
    ["outcome"],
)
ATTEMPTS = Counter(
    "trunkline_event_delivery_attempts_total",
    "HTTP delivery attempts, by result (2xx, 4xx, 5xx, timeout, connection, refused, ...)",
    ["result"],
)
DEAD_LETTERS = Counter(
    "trunkline_event_dead_letters_total", "Deliveries dead-lettered, by reason", ["reason"]
)
DELIVERY_LAG = Histogram(
    "trunkline_event_delivery_lag_seconds",
    "Time from the event's commit to the endpoint's successful answer",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0),
)
ATTEMPT_LATENCY = Histogram(
    "trunkline_event_attempt_duration_seconds",
    "Duration of one HTTP delivery attempt",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
VALIDATIONS = Counter("trunkline_event_validations_total", "Validation handshakes, by result", ["result"])
LOCAL_TASKS = Gauge(
    "trunkline_event_local_tasks",
    "Delivery and handshake tasks handed by this process's dispatcher to its own threads, unfinished",
)
# Updated by the dispatcher and the delivery tasks (trunkline worker) only.
owned_by(
    "worker",
    EVENTS_PUBLISHED,
    DELIVERIES,
    ATTEMPTS,
    DEAD_LETTERS,
    DELIVERY_LAG,
    ATTEMPT_LATENCY,
    VALIDATIONS,
    LOCAL_TASKS,
)


def attempt_label(status: int | None, error_kind: FailureKind | None) -> str:
    if status is not None:
        return f"{status // 100}xx"
    if error_kind is FailureKind.TIMEOUT:
        return "timeout"
    if error_kind is FailureKind.DESTINATION_REFUSED:
        return "refused"
    return "connection"


class BacklogCollector(Collector):
    """Queue depth at scrape time, from the database (the truth) and the broker's queue."""

    def __init__(self) -> None:
        self.database: Database | None = None
        self.settings: Settings | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.database is None or self.settings is None:
            return
        family = GaugeMetricFamily(
            "trunkline_event_queue_depth",
            "Work waiting: outbox rows not fanned out, deliveries pending, messages in the broker queue",
            labels=["stage"],
        )
        try:
            with self.database.session() as session:
                outbox, pending = queue_depth(session)
            family.add_metric(["outbox"], outbox)
            family.add_metric(["pending"], pending)
        except Exception:  # noqa: S110 - a scrape must not fail because the database is away
            pass
        broker = broker_queue_length(self.settings)
        if broker is not None:
            family.add_metric(["broker"], broker)
        yield family


def broker_queue_length(settings: Settings) -> int | None:
    url = broker_url(settings)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    try:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return int(client.llen(EVENTS_QUEUE))
        finally:
            client.close()
    except redis.RedisError:
        return None


_collector = BacklogCollector()
_registered = threading.Lock()
_done = False


def install_backlog_collector(database: Database, settings: Settings) -> None:
    """Report queue depth for this database on /metrics (the last app created wins)."""
    global _done  # noqa: PLW0603 - registered once per process
    with _registered:
        _collector.database = database
        _collector.settings = settings
        if not _done:
            REGISTRY.register(_collector)
            _done = True
