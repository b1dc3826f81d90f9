"""sip/worker/edge_writer.py: the pool never waits for the edge; the edge gets each worker's
latest state, once, and again after a failed write."""

from __future__ import annotations

import threading
import time

from prometheus_client import REGISTRY

from sip.worker.edge_writer import EdgeWriter
from sip.worker.ledger import EdgeState


class SlowEdge:
    """Records writes; each waits until the test lets it through; the first ``failures`` fail."""

    def __init__(self, failures: int = 0) -> None:
        self.written: list[EdgeState] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.failures = failures

    def __call__(self, change: EdgeState) -> None:
        self.entered.set()
        assert self.gate.wait(5)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the edge is restarting")
        self.written.append(change)


def test_submit_never_waits_and_states_coalesce_per_worker() -> None:
    edge = SlowEdge()
    writer = EdgeWriter(edge)
    writer.start()
    try:
        writer.submit([EdgeState(0, False)])
        assert edge.entered.wait(5)  # the thread is inside the first write, held at the gate
        started = time.monotonic()
        writer.submit([EdgeState(1, False), EdgeState(2, False)])
        writer.submit([EdgeState(1, True), EdgeState(0, True)])
        writer.submit([EdgeState(2, True), EdgeState(2, False)])
        assert time.monotonic() - started < 0.5
        assert not writer.settled(0.05)
        edge.gate.set()
        assert writer.settled(5)
        # each worker's latest state, once: 2's True was replaced before it was written
        assert edge.written == [
            EdgeState(0, False),
            EdgeState(0, True),
            EdgeState(1, True),
            EdgeState(2, False),
        ]
        writer.submit([EdgeState(0, False), EdgeState(0, True)])  # flipped back before its write
        assert writer.settled(5)
        assert len(edge.written) == 4
    finally:
        writer.close()


def _writes(state: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("trunkline_sip_edge_writes_total", {"state": state, "outcome": outcome})
    return value or 0.0


def test_a_failed_write_is_tried_again_unless_a_newer_state_replaced_it() -> None:
    failed_before, written_before = _writes("inactive", "failed"), _writes("inactive", "written")
    edge = SlowEdge(failures=2)
    edge.gate.set()
    writer = EdgeWriter(edge, retry_seconds=0.05)
    writer.start()
    try:
        writer.submit([EdgeState(3, False)])
        assert writer.settled(5)
        assert edge.written == [EdgeState(3, False)]
        # Counted as the operator sees them (trunkline_sip_edge_writes_total).
        assert _writes("inactive", "failed") - failed_before == 2
        assert _writes("inactive", "written") - written_before == 1
    finally:
        writer.close()
    edge = SlowEdge(failures=1)
    writer = EdgeWriter(edge, retry_seconds=0.3)
    writer.start()
    try:
        writer.submit([EdgeState(4, False)])
        assert edge.entered.wait(5)
        writer.submit([EdgeState(4, True)])  # newer, while the failing write is under way
        edge.gate.set()
        assert writer.settled(5)
        assert edge.written == [EdgeState(4, True)]
    finally:
        writer.close()
