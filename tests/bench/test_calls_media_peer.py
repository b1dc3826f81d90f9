"""bench/calls_media_peer.py: the media run's carrier RTP peer, against a real UDP socket that
plays the worker's part (silence, then the prompt; then it reads the digits back)."""

from __future__ import annotations

import contextlib
import socket
import struct
import time

from bench.calls_media_peer import ALAW, PCMA, TELEPHONE_EVENT, RtpPeer, audible, event_packets

SILENCE = bytes([0xD5]) * 160  # A-law for the smallest positive sample
LOUD = bytes([0xAA]) * 160


def rtp(payload: bytes, sequence: int) -> bytes:
    return struct.pack("!BBHII", 0x80, PCMA, sequence, sequence * 160, 1234) + payload


def test_alaw_decoding_and_audibility() -> None:
    assert ALAW[0xD5] == 8
    assert ALAW[0x55] == -8
    assert ALAW[0xAA] == 32256
    assert ALAW[0x2A] == -32256
    assert not audible(SILENCE)
    assert audible(LOUD)


def test_a_digit_is_eight_updates_then_three_ends_on_one_timestamp() -> None:
    packets = event_packets("#", 100, 5000, 42)
    assert len(packets) == 11
    parsed = [struct.unpack("!BBHIIBBH", datagram) for _, _, datagram in packets]
    assert {p[3] for p in parsed} == {5000}
    assert [p[2] for p in parsed] == list(range(100, 111))
    assert [p[1] >> 7 for p in parsed] == [1] + [0] * 10  # the marker on the first
    assert {p[1] & 0x7F for p in parsed} == {TELEPHONE_EVENT}
    assert {p[5] for p in parsed} == {11}  # '#'
    assert [p[6] >> 7 for p in parsed] == [0] * 8 + [1] * 3
    assert [p[7] for p in parsed] == [160 * n for n in range(1, 9)] + [1280] * 3
    assert [end for _, end, _ in packets] == [False] * 8 + [True] * 3


def test_the_peer_presses_the_digits_once_the_prompt_is_heard() -> None:
    peer = RtpPeer(2, "1479", delay=0.05, gap=0.02)
    worker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    worker.bind(("127.0.0.1", 0))
    worker.settimeout(0.2)
    peer.start()
    try:
        target = ("127.0.0.1", peer.ports[1])
        for n in range(5):
            worker.sendto(rtp(SILENCE, n), target)
        time.sleep(0.2)
        assert peer.calls[1].first_packet_at is not None
        assert peer.calls[1].prompt_at is None  # silence is not the prompt
        with_no_digits = []
        with contextlib.suppress(TimeoutError):
            with_no_digits.append(worker.recv(2048))
        assert with_no_digits == []
        worker.sendto(rtp(LOUD, 5), target)
        worker.settimeout(2)
        received = [worker.recv(2048) for _ in range(44)]
    finally:
        peer.stop()
        worker.close()
    events = [struct.unpack("!BBHIIBBH", datagram) for datagram in received]
    starts = [e[5] for e in events if e[1] >> 7]
    assert starts == [1, 4, 7, 9]
    call = peer.calls[1]
    assert call.prompt_at is not None
    assert len(call.digit_started) == 4
    assert len(call.digit_ended) == 4
    assert call.digit_started[0] - call.prompt_at >= 0.05
    assert call.last_sent_at is not None
    assert call.last_sent_at > call.digit_ended[-1]
    assert peer.calls[0].first_packet_at is None
