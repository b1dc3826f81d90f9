"""The SIP process's event lanes (sip/control/lanes.py): a worker's events stay in order on one
lane, and a slow event holds up only its own lane."""

from __future__ import annotations

import threading
import time

from hypothesis import given
from hypothesis import strategies as st

from sip.control.lanes import EventLanes, lane_of
from sip.worker.messages import CallState, CallStateChanged
from sip.worker.pool import WorkerEvent


def _event(worker: int, call_id: str) -> WorkerEvent:
    return WorkerEvent(worker, CallStateChanged(call_id, CallState.CONNECTED))


@given(st.integers(min_value=0, max_value=500), st.integers(min_value=1, max_value=16), st.text())
def test_a_worker_has_one_lane(worker: int, lanes: int, call_id: str) -> None:
    lane = lane_of(_event(worker, call_id), lanes)
    assert lane == worker % lanes
    assert lane == lane_of(_event(worker, call_id + "x"), lanes)


@given(st.integers(min_value=1, max_value=16), st.text())
def test_events_of_no_worker_go_by_call(lanes: int, call_id: str) -> None:
    assert 0 <= lane_of(_event(-1, call_id), lanes) < lanes
    assert lane_of(_event(-1, call_id), lanes) == lane_of(_event(-1, call_id), lanes)


def test_order_per_worker_and_no_head_of_line_blocking() -> None:
    seen: list[tuple[int, str]] = []
    release = threading.Event()
    lock = threading.Lock()

    def handle(item: WorkerEvent) -> None:
        call_id = item.event.call_id  # type: ignore[union-attr]
        if call_id == "slow":
            release.wait(10)
        with lock:
            seen.append((item.worker, call_id))

    lanes = EventLanes(2, handle)
    lanes.start()
    lanes.submit(_event(0, "slow"))
    for n in range(50):
        lanes.submit(_event(0, f"a{n}"))
        lanes.submit(_event(1, f"b{n}"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(seen) < 50:
        time.sleep(0.01)
    with lock:
        assert seen == [(1, f"b{n}") for n in range(50)]  # worker 1's lane went on meanwhile
    release.set()
    lanes.close()
    assert [c for w, c in seen if w == 0] == ["slow", *(f"a{n}" for n in range(50))]


def test_a_failing_event_does_not_stop_its_lane() -> None:
    seen: list[str] = []

    def handle(item: WorkerEvent) -> None:
        if item.event.call_id == "bad":  # type: ignore[union-attr]
            raise RuntimeError("boom")
        seen.append(item.event.call_id)  # type: ignore[union-attr]

    lanes = EventLanes(1, handle)
    lanes.start()
    lanes.submit(_event(0, "bad"))
    lanes.submit(_event(0, "good"))
    lanes.close()
    assert seen == ["good"]
