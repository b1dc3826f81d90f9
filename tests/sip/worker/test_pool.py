"""The supervisor: routing by call id, capacity, a worker killed mid-call replaced and its call ended."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from sip.worker.ledger import WORKER_DIED, EdgeState
from sip.worker.messages import (
    Answer,
    CallState,
    CallStateChanged,
    CommandFailed,
    Hangup,
    IncomingCall,
    MakeCall,
    WorkerReady,
)
from sip.worker.pool import NO_CAPACITY, WorkerPool
from tests.sip.conftest import PoolFactory
from tests.sip.support import HOST, SCENARIOS, RtpPeer, Sipp, events_until, next_event, next_worker_event

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]


def test_a_worker_killed_mid_call_is_replaced_and_its_call_ends(
    make_pool: PoolFactory, tmp_path: Path
) -> None:
    edges: list[EdgeState] = []
    pool = make_pool(2, edge=edges.append)
    assert pool.edge_settled(5)
    assert sorted(edges, key=lambda e: e.worker) == [EdgeState(0, True), EdgeState(1, True)]
    peer = RtpPeer()
    target = f"{HOST}:{pool.config.sip_port + 1}"
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_call.xml", "-s", "+15550001", "-key", "rtp_sink", str(peer.port),
        "-d", "20000", target=target,
    )  # fmt: skip
    try:
        arrived = next_worker_event(pool, IncomingCall)
        call_id = arrived.event.call_id  # type: ignore[union-attr]
        assert arrived.worker == 1
        pool.send(Answer(call_id))
        events_until(pool, call_id, CallState.CONNECTED)
        old_pid = pool.pid(1)
        assert old_pid is not None

        os.kill(old_pid, signal.SIGKILL)  # the worker process this pool started

        ended = next_event(pool, CallStateChanged, call_id)
        assert (ended.state, ended.reason) == (CallState.DISCONNECTED, WORKER_DIED)
        assert pool.edge_settled(5)
        assert EdgeState(1, False) in edges
        ready = next_worker_event(pool, WorkerReady, timeout=15)
        assert ready.worker == 1
        assert ready.event.pid != old_pid  # type: ignore[union-attr]
        assert pool.edge_settled(5)
        assert edges[-1] == EdgeState(1, True)
        status = pool.status()[1]
        assert (status.up, status.calls, status.free, status.restarts) == (True, 0, 4, 1)
        assert pool.holder(call_id) is None
        assert pool.send(Answer(call_id)) is None
        assert next_event(pool, CommandFailed, call_id).reason == "no such call"
    finally:
        sipp.kill()
        peer.close()


def test_outbound_calls_spread_over_workers_until_all_are_full(make_pool: PoolFactory) -> None:
    pool = make_pool(2)
    # An address nobody answers: each INVITE keeps its slot while it is retransmitted.
    silent = f"sip:+15551112222@{HOST}:9"
    placed = [pool.send(MakeCall(f"out-{i}", silent, "sip:+15557770000@trunkline.invalid")) for i in range(8)]
    assert sorted(placed) == [0, 0, 0, 0, 1, 1, 1, 1]  # type: ignore[type-var]
    assert [s.free for s in pool.status()] == [0, 0]
    assert pool.send(MakeCall("out-9", silent, "sip:+15557770000@trunkline.invalid")) is None
    assert next_event(pool, CommandFailed, "out-9").reason == NO_CAPACITY
    for i in range(8):
        pool.send(Hangup(f"out-{i}"))
    ended: set[str] = set()
    while len(ended) < 8:
        event = next_event(pool, CallStateChanged)
        if event.state is CallState.DISCONNECTED:
            ended.add(event.call_id)
    assert ended == {f"out-{i}" for i in range(8)}
    assert [s.free for s in pool.status()] == [4, 4]


def test_status_reports_each_worker(make_pool: PoolFactory) -> None:
    pool: WorkerPool = make_pool(2)
    status = pool.status()
    assert [(s.index, s.up, s.calls, s.free) for s in status] == [(0, True, 0, 4), (1, True, 0, 4)]
    assert status[1].sip_port == status[0].sip_port + 1
    assert all(s.pid for s in status)


def test_a_worker_that_cannot_start_fails_the_start_clearly(make_pool: PoolFactory) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind((HOST, 0))  # the worker's SIP port is in use
    try:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="SIP worker 0 exited with"):
            make_pool(1, sip_port=taken.getsockname()[1])
        assert time.monotonic() - started < 10
    finally:
        taken.close()


@pytest.mark.parametrize("wake", [True, False])
def test_a_command_wakes_a_worker_asleep_in_a_long_poll(
    make_pool: PoolFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wake: bool
) -> None:
    pool = make_pool(1, poll_ms=3000)  # a worker with no wake-up would sit up to 3 s on a command
    if not wake:
        monkeypatch.setattr(pool, "_wake", lambda index: None)
    target = f"{HOST}:{pool.config.sip_port}"
    sipp = Sipp(tmp_path, SCENARIOS / "carrier_call_pcap.xml", "-s", "+15550001", "-d", "500", target=target)
    try:
        call_id = next_worker_event(pool, IncomingCall).event.call_id  # type: ignore[union-attr]
        time.sleep(0.5)  # the worker is back asleep: no SIP traffic while the call rings
        sent = time.monotonic()
        pool.send(Answer(call_id))
        events_until(pool, call_id, CallState.CONNECTED)
        took = time.monotonic() - sent
        if wake:
            assert took < 1.0, took
        else:  # the control: without the datagram the Answer waits for the poll to run out
            assert took > 1.0, took
        assert sipp.wait(20) == 0, sipp.errors()
    finally:
        sipp.kill()
