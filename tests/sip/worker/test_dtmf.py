"""DTMF through a real pjsua2 worker: SIPp and a crafted RTP peer as the carrier.

Digits the carrier sends (RFC 2833, SIP INFO, in-band tones) are the digits reported; digits the
app sends (``SendDtmf``) are the digits the carrier receives (RTP events decoded by the peer,
INFO bodies checked by SIPp).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sip.worker.messages import (
    Answer,
    CallState,
    CallStateChanged,
    DtmfMethod,
    DtmfReceived,
    Event,
    IncomingCall,
)
from sip.worker.pool import WorkerPool
from tests.sip.support import HOST, SCENARIOS, Sipp, events_until, next_event

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
