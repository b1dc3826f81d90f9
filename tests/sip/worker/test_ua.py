"""One pjsua2 worker against SIPp as the carrier: inbound answer with RTP, refusals, outbound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sip.worker.messages import (
    Answer,
    CallState,
    CallStateChanged,
    CommandFailed,
    Event,
    Hangup,
    IncomingCall,
    MakeCall,
    MediaActive,
    MediaStats,
    Play,
    PlayFinished,
    PlayOutcome,
    QueryMedia,
    Redirect,
    Reject,
    Ring,
)
from sip.worker.pool import WorkerPool
from tests.sip.support import HOST, SCENARIOS, RtpPeer, Sipp, events_until, next_event

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]

NUMBER = "+15550001"
PASSWORD = "trunk-secret"  # callee_auth.xml checks it


def worker_uri(pool: WorkerPool) -> str:
    return f"{HOST}:{pool.config.sip_port}"


def media_stats(pool: WorkerPool, call_id: str, *, at_least: int, timeout: float = 5.0) -> MediaStats:
    """Poll the worker's RTP counters until both directions reach ``at_least`` packets."""
    deadline = time.monotonic() + timeout
    while True:
        pool.send(QueryMedia(call_id))
        stats = next_event(pool, MediaStats, call_id)
        if (stats.rx_packets >= at_least and stats.tx_packets >= at_least) or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def test_inbound_answer_with_rtp_both_ways_then_far_end_bye(pool: WorkerPool, tmp_path: Path) -> None:
    peer = RtpPeer()
    sipp = Sipp(
        tmp_path,
        SCENARIOS / "carrier_call.xml",
        "-s",
        NUMBER,
        "-key",
        "rtp_sink",
        str(peer.port),
        "-d",
        "2000",
        target=worker_uri(pool),
    )
    try:
        incoming = next_event(pool, IncomingCall)
        assert incoming.to_uri == f"sip:{NUMBER}@{worker_uri(pool)}"
        assert incoming.from_uri.startswith("sip:+15551230000@")
        assert incoming.display_name == "Carrier Caller"
        assert incoming.source == f"{HOST}:{sipp.port}"
        assert incoming.sip_call_id
        assert ("P-Asserted-Identity", f"<sip:+15551230000@{HOST}>") in incoming.headers
        assert pool.holder(incoming.call_id) == 0
        assert pool.status()[0].free == 3

        pool.send(Ring(incoming.call_id))
        ringing = next_event(pool, CallStateChanged, incoming.call_id)
        assert (ringing.state, ringing.status) == (CallState.RINGING, 180)
        pool.send(Answer(incoming.call_id))
        events = events_until(pool, incoming.call_id, CallState.CONNECTED)
        assert [e.codec for e in events if isinstance(e, MediaActive)] == ["PCMA"]

        stats = media_stats(pool, incoming.call_id, at_least=25)
        assert stats.rx_packets >= 25, stats  # the carrier's audio reached the worker
        assert stats.tx_packets >= 25, stats
        assert peer.received >= 25  # and the worker's audio reached the carrier

        pool.send(Play(incoming.call_id, "op-1", ("no-such-prompt.wav",)))  # a bad file: said so
        failed = next_event(pool, PlayFinished, incoming.call_id)
        assert (failed.outcome, "no-such-prompt.wav" in failed.reason) == (PlayOutcome.FAILED, True)

        ended = next_event(pool, CallStateChanged, incoming.call_id)  # the far end's BYE
        assert (ended.state, ended.status) == (CallState.DISCONNECTED, 200)
        assert sipp.wait() == 0, sipp.errors()
        assert pool.holder(incoming.call_id) is None
        assert pool.status()[0].free == 4
    finally:
        sipp.kill()
        peer.close()


def test_inbound_pcap_audio_is_received(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_call_pcap.xml", "-s", NUMBER, "-d", "2500", target=worker_uri(pool)
    )
    try:
        incoming = next_event(pool, IncomingCall)
        pool.send(Answer(incoming.call_id))
        events_until(pool, incoming.call_id, CallState.CONNECTED)
        stats = media_stats(pool, incoming.call_id, at_least=50)
        assert stats.rx_packets >= 50, stats  # g711a.pcap played by SIPp
        assert stats.tx_packets >= 50, stats
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def refused_scenario(tmp_path: Path, status: int, check: str = "", variables: str = "") -> Path:
    text = (SCENARIOS / "carrier_refused.xml").read_text()
    reference = f'  <Reference variables="{variables}"/>' if variables else ""
    path = tmp_path / f"refused_{status}.xml"
    path.write_text(
        text.replace("{status}", str(status)).replace("{check}", check).replace("{reference}", reference)
    )
    return path


@pytest.mark.parametrize("status", [486, 403, 480])
def test_reject_sends_the_status(pool: WorkerPool, tmp_path: Path, status: int) -> None:
    sipp = Sipp(tmp_path, refused_scenario(tmp_path, status), "-s", NUMBER, target=worker_uri(pool))
    try:
        incoming = next_event(pool, IncomingCall)
        pool.send(Reject(incoming.call_id, status))
        ended = next_event(pool, CallStateChanged, incoming.call_id)
        assert (ended.state, ended.status) == (CallState.DISCONNECTED, status)
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def test_redirect_sends_302_with_the_contact(pool: WorkerPool, tmp_path: Path) -> None:
    target = "sip:+15559990000@127.0.0.1"
    check = (
        '      <ereg regexp="&lt;sip:\\+15559990000@127\\.0\\.0\\.1&gt;" search_in="hdr" header="Contact:"'
        ' check_it="true" assign_to="contact"/>'
    )
    sipp = Sipp(
        tmp_path, refused_scenario(tmp_path, 302, check, "contact"), "-s", NUMBER, target=worker_uri(pool)
    )
    try:
        incoming = next_event(pool, IncomingCall)
        pool.send(Redirect(incoming.call_id, target))
        ended = next_event(pool, CallStateChanged, incoming.call_id)
        assert (ended.state, ended.status) == (CallState.DISCONNECTED, 302)
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def test_outbound_call_to_a_sipp_callee_connects_and_hangs_up(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, SCENARIOS / "callee.xml")
    try:
        time.sleep(0.3)  # SIPp binds its port
        target = f"sip:+15551112222@{HOST}:{sipp.port}"
        pool.send(MakeCall("out-1", target, "sip:+15557770000@trunkline.invalid", display_name="Trunkline"))
        events = events_until(pool, "out-1", CallState.CONNECTED)
        states = [e.state for e in events if isinstance(e, CallStateChanged)]
        assert states[:2] == [CallState.CALLING, CallState.RINGING], events
        assert CallState.DISCONNECTED not in states
        assert any(isinstance(e, MediaActive) for e in events)
        assert pool.holder("out-1") == 0
        pool.send(Hangup("out-1"))
        assert next_event(pool, CallStateChanged, "out-1").state is CallState.DISCONNECTED
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def test_outbound_call_refused_by_the_far_end_reports_its_status(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, SCENARIOS / "callee_busy.xml")
    try:
        time.sleep(0.3)
        pool.send(
            MakeCall("out-busy", f"sip:+15551112222@{HOST}:{sipp.port}", "sip:+15557770000@trunkline.invalid")
        )
        while (event := next_event(pool, CallStateChanged, "out-busy")).state is not CallState.DISCONNECTED:
            pass
        assert event.status == 486
        assert pool.holder("out-busy") is None
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def test_commands_for_unknown_calls_fail_as_events(pool: WorkerPool) -> None:
    assert pool.send(Answer("nope")) is None
    failed = next_event(pool, CommandFailed, "nope")
    assert failed.command == "Answer"


def test_slots_are_reused_under_churn_without_hanging_up_live_calls(pool: WorkerPool, tmp_path: Path) -> None:
    """16 calls, 3 at a time, through 4 slots: a late Call destructor would kill a live call."""
    calls = 16
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_call.xml", "-s", NUMBER, "-key", "rtp_sink", "9", "-d", "300",
        "-l", "3", "-r", "20", target=worker_uri(pool), calls=calls,
    )  # fmt: skip
    try:
        ended: dict[str, CallStateChanged] = {}
        while len(ended) < calls:
            event = next_event(pool, Event, timeout=20)  # type: ignore[type-abstract]
            if isinstance(event, IncomingCall):
                pool.send(Answer(event.call_id))
            elif isinstance(event, CallStateChanged) and event.state is CallState.DISCONNECTED:
                ended[event.call_id] = event
        assert {e.status for e in ended.values()} == {200}, ended  # every call ended by the far end's BYE
        assert sipp.wait() == 0, sipp.errors()
        assert pool.status()[0].free == 4
    finally:
        sipp.kill()


def test_caller_hanging_up_while_it_rings_ends_the_call(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, SCENARIOS / "carrier_cancel.xml", "-s", NUMBER, target=worker_uri(pool))
    try:
        incoming = next_event(pool, IncomingCall)
        pool.send(Ring(incoming.call_id))
        events = events_until(pool, incoming.call_id, CallState.DISCONNECTED)
        assert events[-1] == CallStateChanged(
            incoming.call_id, CallState.DISCONNECTED, 487, "Request Terminated"
        )
        assert sipp.wait() == 0, sipp.errors()
        assert pool.holder(incoming.call_id) is None
    finally:
        sipp.kill()


def test_outbound_call_answers_a_digest_challenge(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, SCENARIOS / "callee_auth.xml")
    try:
        time.sleep(0.3)
        target = f"sip:+15551112222@{HOST}:{sipp.port}"
        caller = "sip:+15557770000@trunkline.invalid"
        pool.send(MakeCall("out-auth", target, caller, username="trunk-user", password=PASSWORD))
        events_until(pool, "out-auth", CallState.CONNECTED)
        pool.send(Hangup("out-auth"))
        assert next_event(pool, CallStateChanged, "out-auth").state is CallState.DISCONNECTED
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()
