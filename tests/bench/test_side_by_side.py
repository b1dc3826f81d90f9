"""bench/side_by_side.py: wrk sending exactly N requests, wrk's summary, CPU per group, figures."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.load_runs import run_wrk
from bench.procstat import Sample
from bench.side_by_side import (
    RunFigures,
    group_cpu_seconds,
    kannel_wrk_script,
    mean_cpu,
    parse_wrk,
    ratio_span,
    span,
    thread_shares,
)

WRK_OUTPUT = """Running 15m test @ http://127.0.0.1:13013
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.71ms    2.70ms  32.38ms   73.00%
  2000 requests in 0.40s, 261.72KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   4960.00
"""


def test_wrk_summary() -> None:
    summary = parse_wrk(WRK_OUTPUT)
    assert (summary.requests, summary.non_2xx, summary.errors) == (2000, 7, 3)
    clean = parse_wrk(
        WRK_OUTPUT.replace("  Non-2xx or 3xx responses: 7\n", "").replace("  Socket errors", "  x")
    )
    assert (clean.non_2xx, clean.errors) == (0, 0)
    with pytest.raises(ValueError, match="not a wrk summary"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


@given(st.integers(min_value=1, max_value=100_000), st.integers(min_value=1, max_value=16))
def test_thread_shares_add_up(count: int, threads: int) -> None:
    shares = thread_shares(count, threads)
    assert sum(shares) == count
    assert max(shares) - min(shares) <= 1


def sample(cpu: dict[str, dict[int, float]]) -> Sample:
    return Sample(0.0, 0.0, 0, cpu, (0.0, 0.0))


def test_group_cpu_counts_new_pids_from_zero_and_gone_ones_at_their_last_figure() -> None:
    first = sample({"api": {10: 5.0, 11: 1.0}, "postgres": {20: 2.0}})
    last = sample({"api": {10: 6.5, 11: 1.25, 12: 0.5}, "postgres": {20: 2.0, 21: 0.75}})
    assert group_cpu_seconds(first, last) == {"api": 2.25, "postgres": 0.75}


def test_spans_and_ratios() -> None:
    assert span([]) == "—"
    assert span([771.4, 912.2, 800.0]) == "771\u2013912"
    assert span([6640.0, 6640.2]) == "6,640"
    assert ratio_span([520.0, 601.0], [2264.0, 2383.0]) == "0.23\u20130.25"
    assert ratio_span([1.0], [0.0]) == "—"
    runs = [
        RunFigures("k", 10, 1.0, 1.0, 1.0, {"a": 1.0, "b": 3.0}),
        RunFigures("k", 10, 1.0, 1.0, 1.0, {"a": 2.0}),
    ]
    assert mean_cpu(runs) == {"a": 1.5, "b": 1.5}
    assert runs[0].cpu_ms_total == 4.0


class Counting(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:
        Counting.seen.append(self.path)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (scripts/bootstrap.sh --dev)")
def test_wrk_sends_count_distinct_sendsms_requests_then_ends(tmp_path: Path) -> None:
    """wrk with kannel_wrk_script stops after N answers (not after its 15 minutes), and the
    requests name distinct messages in their dlr-url callbacks."""
    Counting.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        script = tmp_path / "sendsms.lua"
        script.write_text(kannel_wrk_script(150, 2, 9999, "+14255550100"))
        answered, failed, cpu = run_wrk(f"http://127.0.0.1:{server.server_address[1]}", script, 4)
    finally:
        server.shutdown()
        server.server_close()
    # Answers in flight when the second thread stops still count: at most one per connection.
    assert 150 <= answered <= len(Counting.seen) <= 150 + 4
    assert failed == 0
    assert cpu >= 0
    numbers = []
    for path in Counting.seen:
        query = parse_qs(urlsplit(path).query)
        assert query["dlr-mask"] == ["3"]
        assert query["from"] == ["+14255550100"]
        callback = urlsplit(query["dlr-url"][0])
        assert callback.netloc == "127.0.0.1:9999"
        assert parse_qs(callback.query)["type"] == ["%d"]  # Kannel fills in the report's type
        numbers.append(int(parse_qs(callback.query)["n"][0]))
    assert len(set(numbers)) == len(numbers)  # no message twice
