"""Prometheus metrics shared across the API plane, and which process exports which metric.

Every process registers the metrics of every module it imports, so the API would export the
SMPP process's job counters (gateway.sms.jobs is imported by both) as zeros that never move.
A metric updated by one role's processes only is declared ``owned_by`` that role; each process
exports through ``RoleMetrics(role)``: its own metrics and the shared ones (Python, process,
the unowned), never another role's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger("trunkline.metrics")

_OWNERS: dict[str, frozenset[str]] = {}  # metric family name -> the roles that update it


def owned_by(roles: str | Iterable[str], *metrics: Collector) -> None:
    """Only processes of ``roles`` (gateway.roles names) export these metrics."""
    owners = frozenset([roles] if isinstance(roles, str) else roles)
    for metric in metrics:
        describe = getattr(metric, "describe", None)
        for family in describe() if describe is not None else metric.collect():
            _OWNERS[family.name] = owners


class RoleMetrics:
    """The registry as a process of ``role`` exports it (for ``generate_latest`` and
    ``start_http_server``): its own metrics and the unowned ones."""

    def __init__(self, role: str, registry: CollectorRegistry = REGISTRY) -> None:
        self.role = role
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            owners = _OWNERS.get(family.name)
            if owners is None or self.role in owners:
                yield family


def serve_metrics(role: str, port: int, addr: str = "0.0.0.0") -> bool:  # noqa: S104 - scraped from outside
    """Serve ``role``'s metrics on ``port``; False (and a warning) when the port is taken, so
    that a busy port costs the metrics, not the process."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=addr, registry=RoleMetrics(role))
    except OSError as exc:
        log.warning("cannot serve the %s metrics on %s:%d: %s", role, addr, port, exc)
        return False
    return True


HTTP_REQUESTS = Counter(
    "trunkline_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "trunkline_http_request_duration_seconds",
    "Time from request start to the end of the response",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
AUTH_FAILURES = Counter("trunkline_auth_failures_total", "Rejected data-plane or operator requests", ["kind"])
TOKENS_ISSUED = Counter("trunkline_access_tokens_issued_total", "Identity access tokens issued")
RELAY_CONFIGS_ISSUED = Counter("trunkline_relay_configurations_issued_total", "TURN credentials issued")
owned_by("api", HTTP_REQUESTS, HTTP_LATENCY, AUTH_FAILURES, TOKENS_ISSUED, RELAY_CONFIGS_ISSUED)
