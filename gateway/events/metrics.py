"""Prometheus metrics for the event pipeline."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
QUEUE_DEPTH = Gauge(
    "trunkline_event_queue_depth",
    "Work waiting: outbox rows not yet fanned out, and deliveries pending",
    ["stage"],
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


def attempt_label(status: int | None, error_kind: str | None) -> str:
    if status is not None:
        return f"{status // 100}xx"
    return {"Timeout": "timeout", "DestinationRefused": "refused"}.get(error_kind or "", "connection")
