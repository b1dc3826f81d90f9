"""A worker's owner loop waits long in pjsua2 while nothing happens (DEFAULT_POLL_MS); what a
callback on one of pjmedia's threads reports must not wait for that wait to run out.

RFC 2833 digits arrive with the call's RTP, on the media thread, not on the owner's poll: the
callback's event ends the owner's poll with a datagram (sip.worker.ua.UserAgent._emit). Without
it the digit would sit until the 3 s poll that began at the call's last SIP message ran out,
about 2.4 s after the key was released here.
"""

from __future__ import annotations

import time
from pathlib import Path

from sip.worker.messages import DtmfReceived
from sip.worker.pool import WorkerPool
from tests.sip.conftest import PoolFactory
from tests.sip.support import RtpPeer, next_event
from tests.sip.worker.test_dtmf import answered, rtp_call

LONG_POLL_MS = 3000


def test_a_digit_on_the_media_thread_ends_a_long_idle_poll(make_pool: PoolFactory, tmp_path: Path) -> None:
    pool: WorkerPool = make_pool(1, poll_ms=LONG_POLL_MS)
    peer = RtpPeer()
    sipp = rtp_call(pool, tmp_path, peer)
    try:
        call_id = answered(pool)
        time.sleep(0.5)  # the owner is back in a long poll: RTP is not on its sockets
        peer.press_rfc2833("5", 80)
        digit = next_event(pool, DtmfReceived, call_id)
        waited = time.monotonic() - peer.key_ends[0]
        assert digit.digit == "5"
        assert waited < 1.0, waited
    finally:
        sipp.kill()
        peer.close()
