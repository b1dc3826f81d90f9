"""The Kamailio edge in front of a pool: calls spread over workers, full workers skipped, outbound."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sip.edge import destinations
from sip.kamailio import KamailioEdge
from sip.worker.ledger import WORKER_DIED
from sip.worker.messages import (
    Answer,
    CallState,
    CallStateChanged,
    Hangup,
    IncomingCall,
    MakeCall,
    MediaStats,
    QueryMedia,
    WorkerReady,
)
from sip.worker.pool import WorkerPool
from tests.sip.conftest import PoolFactory
from tests.sip.support import (
    HOST,
    SCENARIOS,
    Sipp,
    events_until,
    free_udp_block,
    next_event,
    next_worker_event,
    require,
)

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]


@pytest.fixture
def edge_pool(make_pool: PoolFactory, tmp_path: Path) -> Iterator[tuple[KamailioEdge, WorkerPool]]:
    """Two workers behind Kamailio; the pool marks them active/inactive over RPC."""
    require("kamailio")
    listen = free_udp_block(2)
    sip_port = free_udp_block(2)
    edge = KamailioEdge(
        destinations(HOST, sip_port, 2),
        listen_host=HOST,
        listen_port=listen,
        rpc_port=listen + 1,
        directory=tmp_path / "kamailio",
        children=2,
    )
    (tmp_path / "kamailio").mkdir()
    edge.start()
    try:
        pool = make_pool(
            2,
            edge=edge.set_worker,
            end_calls=edge.end_calls_of,
            sip_port=sip_port,
            outbound_proxy=f"sip:{edge.address};lr",
            trust_source_header=True,
        )
        yield edge, pool
    finally:
        edge.stop()


def test_inbound_calls_spread_over_the_workers(
    edge_pool: tuple[KamailioEdge, WorkerPool], tmp_path: Path
) -> None:
    edge, pool = edge_pool
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_call_pcap.xml", "-s", "+15550001", "-d", "3000", "-l", "4", "-r", "20",
        target=edge.address, calls=4,
    )  # fmt: skip
    try:
        by_worker: dict[int, list[str]] = {0: [], 1: []}
        for _ in range(4):
            arrived = next_worker_event(pool, IncomingCall)
            incoming = arrived.event
            assert isinstance(incoming, IncomingCall)
            assert incoming.source == f"{HOST}:{sipp.port}"  # the carrier, not Kamailio
            assert incoming.to_uri.startswith("sip:+15550001@")
            by_worker[arrived.worker].append(incoming.call_id)
            pool.send(Answer(incoming.call_id))
        assert [len(calls) for calls in by_worker.values()] == [2, 2], by_worker
        time.sleep(1.0)
        for calls in by_worker.values():
            for call_id in calls:
                pool.send(QueryMedia(call_id))
                stats = next_event(pool, MediaStats, call_id)
                assert stats.rx_packets > 10, stats
                assert stats.tx_packets > 10, stats
        assert sipp.wait(40) == 0, sipp.errors()
        assert [s.free for s in pool.status()] == [4, 4]
    finally:
        sipp.kill()


def test_a_full_worker_is_skipped(edge_pool: tuple[KamailioEdge, WorkerPool], tmp_path: Path) -> None:
    edge, pool = edge_pool
    silent = f"sip:+15551112222@{HOST}:9"  # nobody answers: the slots stay taken
    placed = [
        pool.send(MakeCall(f"hold-{i}", silent, "sip:+15557770000@trunkline.invalid")) for i in range(6)
    ]
    assert sorted(placed) == [0, 0, 0, 1, 1, 1]  # type: ignore[type-var]
    pool.send(MakeCall("hold-6", silent, "sip:+15557770000@trunkline.invalid"))
    full = pool.holder("hold-6")
    assert full is not None
    assert [s.free for s in pool.status()][full] == 0
    uri = edge.workers[full].uri
    assert pool.edge_settled(5)
    assert edge.dispatcher_states()[uri].startswith("I")  # the supervisor told Kamailio

    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_call_pcap.xml", "-s", "+15550001", "-d", "500", target=edge.address
    )
    try:
        arrived = next_worker_event(pool, IncomingCall)
        assert arrived.worker != full
        pool.send(Answer(arrived.event.call_id))  # type: ignore[union-attr]
        assert sipp.wait(20) == 0, sipp.errors()
    finally:
        sipp.kill()
    for i in range(7):
        pool.send(Hangup(f"hold-{i}"))
    deadline = time.monotonic() + 10
    while edge.dispatcher_states()[uri].startswith("I") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert edge.dispatcher_states()[uri].startswith("A")


def test_outbound_call_goes_through_the_edge(
    edge_pool: tuple[KamailioEdge, WorkerPool], tmp_path: Path
) -> None:
    edge, pool = edge_pool
    sipp = Sipp(tmp_path, SCENARIOS / "callee.xml")
    try:
        time.sleep(0.3)
        pool.send(
            MakeCall("out-k", f"sip:+15551112222@{HOST}:{sipp.port}", "sip:+15557770000@trunkline.invalid")
        )
        events_until(pool, "out-k", CallState.CONNECTED)
        pool.send(Hangup("out-k"))
        assert next_event(pool, CallStateChanged, "out-k").state is CallState.DISCONNECTED
        assert sipp.wait(20) == 0, sipp.errors()
        assert f"Record-Route: <sip:{edge.address};lr" in sipp.messages()  # it passed Kamailio
    finally:
        sipp.kill()


def test_a_dead_workers_calls_are_ended_toward_the_carrier(
    edge_pool: tuple[KamailioEdge, WorkerPool], tmp_path: Path
) -> None:
    edge, pool = edge_pool
    sipp = Sipp(tmp_path, SCENARIOS / "carrier_call_held.xml", "-s", "+15550001", target=edge.address)
    try:
        arrived = next_worker_event(pool, IncomingCall)
        call_id = arrived.event.call_id  # type: ignore[union-attr]
        pool.send(Answer(call_id))
        events_until(pool, call_id, CallState.CONNECTED)
        pid = pool.pid(arrived.worker)
        assert pid is not None
        time.sleep(0.3)  # the ACK reaches Kamailio: the dialog is confirmed there

        os.kill(pid, signal.SIGKILL)  # the worker process this pool started

        ended = next_event(pool, CallStateChanged, call_id)
        assert (ended.state, ended.reason) == (CallState.DISCONNECTED, WORKER_DIED)
        assert sipp.wait(20) == 0, sipp.errors()  # the carrier got a BYE from Kamailio
        next_worker_event(pool, WorkerReady, timeout=15)
        assert pool.edge_settled(5)
        assert edge.dispatcher_states()[edge.workers[arrived.worker].uri].startswith("A")
    finally:
        sipp.kill()
