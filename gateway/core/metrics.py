"""Prometheus metrics shared across the API plane."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
