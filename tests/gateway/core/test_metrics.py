"""Each process exports only its own metrics: the API's /metrics has no SMPP, worker or SIP
counters (which would stay 0 there), and each other role's port has its own."""

from __future__ import annotations

import socket
import urllib.request

from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.core.metrics import RoleMetrics, serve_metrics
from gateway.events import metrics as event_metrics  # noqa: F401 - registers the worker's metrics
from gateway.sms import jobs  # noqa: F401 - registers the send jobs' metrics of the API and SMPP

SMPP_ONLY = {
    "trunkline_sms_jobs_received",
    "trunkline_sms_jobs_rejected",
    "trunkline_sms_job_consumer_errors",
}
WORKER_ONLY = {
    "trunkline_event_deliveries",
    "trunkline_event_delivery_lag_seconds",
    "trunkline_events_published",
}
SIP_ONLY = {"trunkline_call_commands_received", "trunkline_call_commands_rejected"}
API_ONLY = {
    "trunkline_http_requests",
    "trunkline_sms_jobs_published",
    "trunkline_call_commands_published",
}


def families(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def exported(role: str) -> set[str]:
    return families(generate_latest(RoleMetrics(role)).decode())  # type: ignore[arg-type]


def test_the_apis_metrics_have_no_other_roles_counters(client: TestClient) -> None:
    names = families(client.get("/metrics").text)
    assert not names & (SMPP_ONLY | WORKER_ONLY | SIP_ONLY)
    assert {"trunkline_http_requests", "trunkline_sms_jobs_published"} <= names
    assert "python_gc_objects_collected" in names  # the shared ones stay


def test_each_role_exports_its_own() -> None:
    import gateway.calls.commands  # noqa: F401 - registers the API's call command metrics
    import sip.control.commands  # noqa: F401 - and the SIP process's

    assert exported("smpp") >= SMPP_ONLY
    assert not exported("smpp") & (API_ONLY | WORKER_ONLY | SIP_ONLY)
    assert exported("worker") >= WORKER_ONLY
    assert not exported("worker") & (API_ONLY | SMPP_ONLY | SIP_ONLY)
    assert exported("sip") >= SIP_ONLY


def test_a_role_serves_its_metrics_on_its_port_and_survives_a_taken_one() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert serve_metrics("smpp", port, addr="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        names = families(answer.read().decode())
    assert names >= SMPP_ONLY
    assert not names & API_ONLY
    assert not serve_metrics("smpp", port, addr="127.0.0.1")  # taken: a warning, no exception
