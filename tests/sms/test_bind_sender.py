"""sms.bind_sender.Sender with a fake socket: the window bounds each write, failed writes and stale or
cancelled submits get their results, stop answers what is queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from sms import pdu
from sms.bind_sender import Queued, Sender, Tally
from sms.bind_session import Session, SmppClient
from sms.bind_types import BindConfig, SessionRole, SubmitOutcome, SubmitRequest
from sms.esme import Action, BindEvent, Esme
from sms.window import Pending

REQUEST = SubmitRequest("15550001111", "447700900123", b"hello")


class FakeSock:
    def __init__(self, error: OSError | None = None) -> None:
        self.error = error
        self.writes: list[bytes] = []
        self.written = threading.Condition()

    def sendall(self, data: bytes) -> None:
        if self.error is not None:
            raise self.error
        with self.written:
            self.writes.append(data)
            self.written.notify_all()


@dataclass
class Rig:
    sender: Sender
    esme: Esme[Queued]
    core: threading.Condition
    session: Session
    sock: FakeSock
    tally: Tally
    lost: list[str] = field(default_factory=list)

    def resolve_written(self) -> list[int]:
        """Answer every submit_sm written so far, as the reader would; their sequence numbers."""
        with self.sock.written:
            data = b"".join(self.sock.writes)
            self.sock.writes.clear()
        sequences = [pdu.parse_header(frame).sequence for frame in pdu.split_frames(bytearray(data))]
        resps = b"".join(pdu.build_pdu(pdu.SUBMIT_SM_RESP, s, body=b"id\x00") for s in sequences)
        actions: list[Action[Queued, Session]] = []
        with self.core:
            self.esme.receive_data(self.session, resps, time.monotonic(), actions)
            self.core.notify_all()
        self.tally.finish_all(a for a in actions if isinstance(a, Pending))
        return sequences


def make_rig(error: OSError | None = None, attach: bool = True, **overrides: Any) -> Rig:
    config = BindConfig(
        **{"name": "t", "host": "h", "port": 1, "system_id": "u", "password": "p", **overrides}
    )
    esme: Esme[Queued] = Esme(config)
    esme.handle(BindEvent.CONNECT)
    core = threading.Condition()
    sock = FakeSock(error)
    session = Session(SessionRole.TRANSCEIVER, cast(SmppClient, type("Client", (), {"sock": sock})()))
    esme.bound([session], time.monotonic())
    tally = Tally("t")
    lost: list[str] = []

    def session_lost(lost_session: Session, reason: str) -> None:
        lost.append(reason)
        lost_session.mark_dead(reason)

    sender = Sender(config, esme, core, tally, threading.Event(), session_lost)
    if attach:
        sender.attach(session)
    return Rig(sender, esme, core, session, sock, tally, lost)


Start = Callable[[Rig], None]


@pytest.fixture
def start() -> Iterator[Start]:
    """Runs a rig's sender thread; stops and joins it at the end of the test."""
    started: list[tuple[Rig, threading.Thread]] = []

    def run(rig: Rig) -> None:
        thread = threading.Thread(target=rig.sender.run, daemon=True)
        thread.start()
        started.append((rig, thread))

    yield run
    for rig, thread in started:
        rig.sender.stop()
        thread.join(5)
        assert not thread.is_alive()


def test_the_window_bounds_every_write_and_each_resp_lets_the_next_go(start: Start) -> None:
    rig = make_rig(window_size=3)
    futures = [rig.sender.put(REQUEST) for _ in range(10)]
    start(rig)
    written: list[int] = []
    deadline = time.monotonic() + 5
    while len(written) < 10 and time.monotonic() < deadline:
        with rig.sock.written:
            rig.sock.written.wait_for(lambda: rig.sock.writes, 0.5)
            assert rig.esme.window.in_use() <= 3
        written += rig.resolve_written()
    assert len(written) == len(set(written)) == 10
    assert all(future.result(1).outcome is SubmitOutcome.ACCEPTED for future in futures)
    assert rig.esme.window.idle()


def test_a_failed_write_resolves_its_burst_as_unknown_and_loses_the_session(start: Start) -> None:
    rig = make_rig(error=BrokenPipeError("broken pipe"))
    futures = [rig.sender.put(REQUEST) for _ in range(3)]
    start(rig)
    results = [future.result(5) for future in futures]
    assert all(r.outcome is SubmitOutcome.UNKNOWN and "write failed" in r.detail for r in results)
    assert rig.lost == ["write failed: broken pipe"]
    assert rig.esme.window.idle()
    assert rig.tally.snapshot()["submits_written"] == 0


def test_submits_not_written_within_queue_timeout_are_retry(start: Start) -> None:
    rig = make_rig(attach=False, queue_timeout=0.05)  # no session: nothing can be written
    future = rig.sender.put(REQUEST)
    start(rig)
    result = future.result(5)
    assert result.outcome is SubmitOutcome.RETRY
    assert "queue_timeout" in result.detail


def test_a_cancelled_submit_is_not_written(start: Start) -> None:
    rig = make_rig()
    cancelled = rig.sender.put(SubmitRequest("1", "2", b"cancelled"))
    kept = rig.sender.put(SubmitRequest("1", "2", b"kept"))
    assert cancelled.cancel()
    start(rig)
    with rig.sock.written:
        assert rig.sock.written.wait_for(lambda: rig.sock.writes, 5)
        (frame,) = pdu.split_frames(bytearray(rig.sock.writes[0]))
    assert frame.endswith(b"kept")
    rig.resolve_written()
    assert kept.result(5).ok


def test_stop_answers_what_is_queued_and_refuses_more() -> None:
    rig = make_rig(attach=False)
    queued = rig.sender.put(REQUEST)
    rig.sender.stop()
    assert queued.result(0).outcome is SubmitOutcome.RETRY
    refused = rig.sender.put(REQUEST).result(0)
    assert (refused.outcome, refused.detail) == (SubmitOutcome.RETRY, "bind is stopping; not sent")
    assert rig.sender.queued() == 0
