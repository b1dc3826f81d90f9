"""`run_sip`: the blocking entry point, with no edge and with Kamailio, driven like the control plane."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sip.worker.main import EdgeKind, SipRuntime, parse_listen, run_sip
from sip.worker.messages import Answer, CallState, CallStateChanged, IncomingCall, Ring
from sip.worker.pool import WorkerEvent
from sip.worker.status import read as read_status
from tests.sip.support import HOST, SCENARIOS, Sipp, free_udp_block, require

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:5060") == ("127.0.0.1", 5060)
    assert parse_listen("[::1]:5070") == ("::1", 5070)
    for bad in ("5060", "host:", ":5060", "0.0.0.0:5060"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def answer_everything(tmp_path: Path, edge: EdgeKind, workers: int, calls: int) -> list[WorkerEvent]:
    """Run run_sip in a thread with an app that rings and answers every call; SIPp calls in."""
    listen = free_udp_block(2)
    seen: list[WorkerEvent] = []
    ended = threading.Event()
    up = threading.Event()
    stop = threading.Event()

    def handler(event: WorkerEvent, runtime: SipRuntime) -> None:
        seen.append(event)
        if isinstance(event.event, IncomingCall):
            runtime.send(Ring(event.event.call_id))
            runtime.send(Answer(event.event.call_id))
        ends = [
            e
            for e in seen
            if isinstance(e.event, CallStateChanged) and e.event.state is CallState.DISCONNECTED
        ]
        if len(ends) == calls:
            ended.set()

    thread = threading.Thread(
        target=run_sip,
        args=(workers, edge, f"{HOST}:{listen}"),
        kwargs={
            "handler": handler,
            "stop": stop,
            "started": lambda runtime: up.set(),
            "worker_sip_port": free_udp_block(workers),
            "rtp_port": free_udp_block(40 * workers),
            "rpc_port": listen + 1,
            "kamailio_dir": tmp_path,
            "kamailio_children": 2,
            "status_file": tmp_path / "sip-status.json",
        },
        daemon=True,
    )
    thread.start()
    try:
        assert up.wait(20), "run_sip did not start"
        deadline = time.monotonic() + 5
        while not (tmp_path / "sip-status.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        status = read_status(tmp_path / "sip-status.json")
        assert (len(status.workers), status.free, status.edge) == (workers, 4 * workers, edge)
        sipp = Sipp(
            tmp_path, SCENARIOS / "carrier_call_pcap.xml", "-s", "+15550001", "-d", "1000", "-l", str(calls),
            target=f"{HOST}:{listen}", calls=calls,
        )  # fmt: skip
        try:
            assert sipp.wait(40) == 0, sipp.errors()
        finally:
            sipp.kill()
        assert ended.wait(10)
    finally:
        stop.set()
        thread.join(20)
    assert not thread.is_alive()
    return seen


def test_run_sip_without_edge_answers_on_the_listen_address(tmp_path: Path) -> None:
    seen = answer_everything(tmp_path, EdgeKind.NONE, 1, 1)
    assert [type(e.event).__name__ for e in seen][:2] == ["WorkerReady", "IncomingCall"]


def test_run_sip_with_kamailio_spreads_calls(tmp_path: Path) -> None:
    require("kamailio")
    seen = answer_everything(tmp_path, EdgeKind.KAMAILIO, 2, 4)
    workers = [e.worker for e in seen if isinstance(e.event, IncomingCall)]
    assert sorted(workers) == [0, 0, 1, 1]
