"""Prometheus metrics of the SMPP binds, labelled by connection name."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SUBMITS = Counter(
    "trunkline_smpp_submits_total",
    "submit_sm results by outcome (accepted, retry, unknown, failed)",
    ["bind", "outcome"],
)
SUBMIT_STATUS = Counter(
    "trunkline_smpp_submit_errors_total", "submit_sm_resp with a non-zero status", ["bind", "status"]
)
THROTTLES = Counter(
    "trunkline_smpp_throttles_total", "ESME_RTHROTTLED / ESME_RMSGQFUL answers (the bind backs off)", ["bind"]
)
RECONNECTS = Counter("trunkline_smpp_reconnects_total", "Binds lost and re-established", ["bind", "reason"])
BIND_FAILURES = Counter("trunkline_smpp_bind_failures_total", "Failed connect or bind attempts", ["bind"])
DELIVERS = Counter("trunkline_smpp_delivers_total", "deliver_sm/data_sm received by kind", ["bind", "kind"])
ENQUIRE_LINK_TIMEOUTS = Counter(
    "trunkline_smpp_enquire_link_timeouts_total", "enquire_link without its resp in time", ["bind"]
)
WINDOW_IN_USE = Gauge("trunkline_smpp_window_in_use", "Submits awaiting their submit_sm_resp", ["bind"])
QUEUED = Gauge("trunkline_smpp_queued", "Submits waiting to be written", ["bind"])
BOUND = Gauge("trunkline_smpp_bound", "1 while the bind is up", ["bind"])
