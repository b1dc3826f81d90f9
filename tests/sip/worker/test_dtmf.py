"""DTMF through a real pjsua2 worker: SIPp and a crafted RTP peer as the carrier.

Digits the carrier sends (RFC 2833, SIP INFO, in-band tones) are the digits reported; digits the
app sends (``SendDtmf``) are the digits the carrier receives (RTP events decoded by the peer,
INFO bodies checked by SIPp). In-band tones are listened for as the trunk's DTMF mode says for
the carrier's SDP: ``auto`` only when it offers no telephone-event (``inband_call``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sip.dtmf_mode import DtmfMode
from sip.worker.messages import (
    Answer,
    CallState,
    CallStateChanged,
    DetectDtmf,
    DtmfDetection,
    DtmfMethod,
    DtmfReceived,
    DtmfSent,
    Event,
    IncomingCall,
    SendDtmf,
)
from sip.worker.pool import WorkerPool
from tests.sip.support import HOST, SCENARIOS, RtpPeer, Sipp, events_until, next_event

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]

NUMBER = "+15550001"


def worker_uri(pool: WorkerPool) -> str:
    return f"{HOST}:{pool.config.sip_port}"


def answered(pool: WorkerPool) -> str:
    incoming = next_event(pool, IncomingCall)
    pool.send(Answer(incoming.call_id))
    events_until(pool, incoming.call_id, CallState.CONNECTED)
    return incoming.call_id


def received_until_hangup(pool: WorkerPool, call_id: str, timeout: float = 20.0) -> list[DtmfReceived]:
    events: list[Event] = events_until(pool, call_id, CallState.DISCONNECTED, timeout)
    return [e for e in events if isinstance(e, DtmfReceived)]


def test_rfc2833_digits_from_the_carrier_are_reported_once_each(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_dtmf_2833.xml", "-s", NUMBER, "-d", "500", target=worker_uri(pool)
    )
    try:
        call_id = answered(pool)
        digits = received_until_hangup(pool, call_id)
        assert "".join(d.digit for d in digits) == "147*#0", digits
        assert {d.method for d in digits} == {DtmfMethod.RFC2833}
        assert all(d.duration_ms == 280 for d in digits), digits  # the pcaps' end duration: 2240
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def test_sip_info_digits_from_the_carrier_are_reported(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_dtmf_info.xml", "-s", NUMBER, "-d", "300", target=worker_uri(pool)
    )
    try:
        call_id = answered(pool)
        digits = received_until_hangup(pool, call_id)
        assert [(d.digit, d.method, d.duration_ms) for d in digits] == [
            ("2", DtmfMethod.SIP_INFO, 160),
            ("9", DtmfMethod.SIP_INFO, 0),
            ("#", DtmfMethod.SIP_INFO, 250),
        ]
        assert sipp.wait() == 0, sipp.errors()  # every INFO was answered 200
    finally:
        sipp.kill()


def rtp_call(pool: WorkerPool, tmp_path: Path, peer: RtpPeer, scenario: str = "carrier_call.xml") -> Sipp:
    return Sipp(
        tmp_path,
        SCENARIOS / scenario,
        "-s",
        NUMBER,
        "-key",
        "rtp_sink",
        str(peer.port),
        "-d",
        "4000",
        target=worker_uri(pool),
    )


def inband_call(pool: WorkerPool, tmp_path: Path, peer: RtpPeer) -> Sipp:
    """``rtp_call`` from a carrier whose SDP offers no telephone-event: its digits can only be
    tones in the audio."""
    scenario = tmp_path / "carrier_call_no_telephone_event.xml"
    text = (SCENARIOS / "carrier_call.xml").read_text()
    for line in ("      a=rtpmap:101 telephone-event/8000\n", "      a=fmtp:101 0-15\n"):
        assert line in text
        text = text.replace(line, "")
    scenario.write_text(text.replace("RTP/AVP 8 101", "RTP/AVP 8"))
    return rtp_call(pool, tmp_path, peer, str(scenario))


def test_send_dtmf_as_rfc2833_is_what_the_far_end_receives(pool: WorkerPool, tmp_path: Path) -> None:
    peer = RtpPeer()
    sipp = rtp_call(pool, tmp_path, peer)
    try:
        call_id = answered(pool)
        pool.send(SendDtmf(call_id, "op-1", "159#"))
        sent = next_event(pool, DtmfSent, call_id)
        assert (sent.operation_id, sent.ok) == ("op-1", True), sent
        deadline = time.monotonic() + 0.5  # out when DtmfSent says so (loopback, a loaded peer)
        while peer.decoded_digits() != "159#" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert peer.decoded_digits() == "159#", peer.events
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()
        peer.close()


def test_send_dtmf_refuses_bad_tones_and_calls_without_audio(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, SCENARIOS / "carrier_cancel.xml", "-s", NUMBER, target=worker_uri(pool))
    try:
        incoming = next_event(pool, IncomingCall)
        pool.send(SendDtmf(incoming.call_id, "op-early", "12"))  # not answered: no audio yet
        refused = next_event(pool, DtmfSent, incoming.call_id)
        assert (refused.ok, refused.reason) == (False, "the call has no active audio")
        pool.send(SendDtmf(incoming.call_id, "op-bad", "12x"))
        bad = next_event(pool, DtmfSent, incoming.call_id)
        assert not bad.ok
        assert "not DTMF tones" in bad.reason, bad
        sipp.wait()
    finally:
        sipp.kill()


def test_send_dtmf_as_sip_info_is_what_the_far_end_receives(pool: WorkerPool, tmp_path: Path) -> None:
    peer = RtpPeer()
    sipp = rtp_call(pool, tmp_path, peer, "carrier_dtmf_info_rx.xml")
    try:
        call_id = answered(pool)
        pool.send(SendDtmf(call_id, "op-info", "47*", DtmfMethod.SIP_INFO))
        sent = next_event(pool, DtmfSent, call_id)
        assert (sent.operation_id, sent.ok) == ("op-info", True), sent
        assert sipp.wait() == 0, sipp.errors()  # SIPp checked each INFO's Signal= in turn
        assert peer.decoded_digits() == ""  # nothing went as RTP events
    finally:
        sipp.kill()
        peer.close()


def test_rfc2833_from_a_peer_one_digit_per_press_even_when_end_packets_are_lost(
    pool: WorkerPool, tmp_path: Path
) -> None:
    peer = RtpPeer()
    sipp = rtp_call(pool, tmp_path, peer)
    try:
        call_id = answered(pool)
        peer.press_rfc2833("3", 100)
        peer.press_rfc2833("3", 60, end_packets=5)
        peer.press_rfc2833("D", 120, end_packets=0)  # its end is lost: the next press ends it
        peer.press_rfc2833("8", 80)
        digits, seen_at = [], []
        while len(digits) < 4:
            digits.append(next_event(pool, DtmfReceived, call_id))
            seen_at.append(time.monotonic())
        # the presses with end packets: 3, 3 (D has none, 8's end is the 3rd mark)
        ends = peer.key_ends
        latencies = [round((seen - end) * 1000) for seen, end in zip(seen_at[:2], ends[:2], strict=True)]
        print(f"RFC 2833: first end packet on the wire -> DtmfReceived at the app: {latencies} ms")
        assert [(d.digit, d.method) for d in digits] == [
            ("3", DtmfMethod.RFC2833),
            ("3", DtmfMethod.RFC2833),
            ("D", DtmfMethod.RFC2833),
            ("8", DtmfMethod.RFC2833),
        ], digits
        assert [d.duration_ms for d in digits][:2] == [100, 60]
        assert received_until_hangup(pool, call_id) == []  # one report per press, nothing late
    finally:
        sipp.kill()
        peer.close()


def test_inband_digits_are_detected_while_asked_for(pool: WorkerPool, tmp_path: Path) -> None:
    peer = RtpPeer()
    sipp = inband_call(pool, tmp_path, peer)
    try:
        call_id = answered(pool)
        peer.press_inband("9", 60)  # before DetectDtmf: not reported
        time.sleep(0.4)
        pool.send(DetectDtmf(call_id, inband=True))  # auto: no telephone-event, so tones
        assert next_event(pool, DtmfDetection, call_id) == DtmfDetection(call_id, True, DtmfMode.AUTO, False)
        time.sleep(0.1)
        for digit in "05*D":
            peer.press_inband(digit, 100, level_dbm0=-20)
        found, seen_at = [], []
        for _ in range(4):
            found.append(next_event(pool, DtmfReceived, call_id))
            seen_at.append(time.monotonic())
        assert [(d.digit, d.method) for d in found] == [(d, DtmfMethod.INBAND) for d in "05*D"], found
        # 100 ms tones; the jitter buffer may drop or stretch a frame of a loaded peer's bursts
        assert all(40 <= d.duration_ms <= 200 for d in found), found
        latencies = [round((seen - end) * 1000) for seen, end in zip(seen_at, peer.key_ends[1:], strict=True)]
        print(f"in-band: key end on the wire -> DtmfReceived at the app: {latencies} ms")
        assert max(latencies) < 600, latencies  # 130-385 ms measured on a loaded machine
        pool.send(DetectDtmf(call_id, inband=False))
        time.sleep(0.1)
        peer.press_inband("7", 80)
        rest = received_until_hangup(pool, call_id)
        assert rest == [], rest
    finally:
        sipp.kill()
        peer.close()


def test_inband_tones_beside_rfc2833_are_not_reported_twice(pool: WorkerPool, tmp_path: Path) -> None:
    peer = RtpPeer()
    sipp = rtp_call(pool, tmp_path, peer)
    try:
        call_id = answered(pool)
        # The carrier offers telephone-event: only a trunk set to inband listens for tones too.
        pool.send(DetectDtmf(call_id, inband=True, mode=DtmfMode.INBAND))
        assert next_event(pool, DtmfDetection, call_id).inband
        time.sleep(0.1)
        peer.press_inband("6", 80)  # an in-band-only carrier so far
        assert next_event(pool, DtmfReceived, call_id).method is DtmfMethod.INBAND
        for digit in "12":  # then the same carrier sends both: each key once, as RFC 2833
            peer.press_rfc2833(digit, 100, pause_ms=0)
            peer.press_inband(digit, 100)
        digits = received_until_hangup(pool, call_id)
        assert [(d.digit, d.method) for d in digits] == [("1", DtmfMethod.RFC2833), ("2", DtmfMethod.RFC2833)]
    finally:
        sipp.kill()
        peer.close()


def test_taps_never_outlive_their_calls_under_slot_churn(pool: WorkerPool, tmp_path: Path) -> None:
    """12 calls through 4 slots, each detecting in-band digits until the carrier hangs up (some
    turned on twice, some off again): the worker survives, and the next call is detected."""
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
        "300",
        "-l",
        "4",
        target=worker_uri(pool),
        calls=12,
    )
    try:
        ended = 0
        while ended < 12:
            event = next_event(pool, Event, timeout=20)  # type: ignore[type-abstract]
            if isinstance(event, IncomingCall):
                pool.send(Answer(event.call_id))
                pool.send(DetectDtmf(event.call_id, inband=True, mode=DtmfMode.INBAND))
                if ended % 3 == 1:
                    pool.send(DetectDtmf(event.call_id, inband=True, mode=DtmfMode.INBAND))
                if ended % 3 == 2:
                    pool.send(DetectDtmf(event.call_id, inband=False))
            elif isinstance(event, CallStateChanged) and event.state is CallState.DISCONNECTED:
                ended += 1
        assert sipp.wait() == 0, sipp.errors()
        assert pool.status()[0].restarts == 0
    finally:
        sipp.kill()
        peer.close()
    (tmp_path / "after").mkdir()
    test_inband_digits_are_detected_while_asked_for(pool, tmp_path / "after")


def test_auto_mode_taps_no_call_whose_carrier_offers_telephone_event(
    pool: WorkerPool, tmp_path: Path
) -> None:
    """``auto`` beside a carrier that negotiated telephone-event: no tap, so its tones go
    unheard while its RFC 2833 digits are reported; the same call set to ``inband`` is tapped."""
    peer = RtpPeer()
    sipp = rtp_call(pool, tmp_path, peer)
    try:
        call_id = answered(pool)
        pool.send(DetectDtmf(call_id, inband=True))
        assert next_event(pool, DtmfDetection, call_id) == DtmfDetection(call_id, False, DtmfMode.AUTO, True)
        peer.press_inband("5", 100)
        time.sleep(0.6)  # in-band digits are reported ~0.2 s after the tone: none comes
        pool.send(DetectDtmf(call_id, inband=True, mode=DtmfMode.INBAND))
        assert next_event(pool, DtmfDetection, call_id) == DtmfDetection(call_id, True, DtmfMode.INBAND, True)
        time.sleep(0.1)
        peer.press_inband("6", 100)
        digit = next_event(pool, DtmfReceived, call_id)
        assert (digit.digit, digit.method) == ("6", DtmfMethod.INBAND)
        pool.send(DetectDtmf(call_id, inband=True))  # back to auto: the tap goes
        assert not next_event(pool, DtmfDetection, call_id).inband
        peer.press_rfc2833("7", 100)
        peer.press_inband("8", 100)
        digits = received_until_hangup(pool, call_id)
        assert [(d.digit, d.method) for d in digits] == [("7", DtmfMethod.RFC2833)]
    finally:
        sipp.kill()
        peer.close()


@pytest.mark.parametrize("mode", [DtmfMode.RFC2833, DtmfMode.INFO])
def test_out_of_band_modes_never_tap(pool: WorkerPool, tmp_path: Path, mode: DtmfMode) -> None:
    peer = RtpPeer()
    sipp = inband_call(pool, tmp_path, peer)
    try:
        call_id = answered(pool)
        pool.send(DetectDtmf(call_id, inband=True, mode=mode))
        assert next_event(pool, DtmfDetection, call_id) == DtmfDetection(call_id, False, mode, False)
        peer.press_inband("5", 100)
        assert received_until_hangup(pool, call_id) == []
    finally:
        sipp.kill()
        peer.close()
