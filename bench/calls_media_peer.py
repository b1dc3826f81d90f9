"""The carrier's media side of bench/calls.py's media run: one RTP socket per call, in Python.

SIPp places the calls (signalling only); each call's SDP offers one of these sockets (SIPp's
injection file gives call n the n-th port), so the gateway's worker sends the call's audio here.
For each call the peer stamps the first packet that is not silence (the prompt reached the
carrier), then, ``delay`` seconds later, sends the call's digits as RFC 4733 (2833)
telephone-events from the same socket, stamping each packet as it leaves. SIPp cannot do
either: it neither timestamps the RTP it receives nor starts its pcaps on the prompt.

A digit is what a phone sends: 8 packets 20 ms apart (the first with the marker bit, the
duration growing by 160 samples), then 3 end packets 20 ms apart; one RTP timestamp per digit.
The receiving worker reports a digit at its first end packet (sip/worker/dtmf.py).
"""

from __future__ import annotations

import heapq
import os
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

PCMA = 8
TELEPHONE_EVENT = 101  # the payload type the scenario's SDP offers for telephone-event
EVENT_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}
PACKET_SECONDS = 0.02
UPDATES = 8  # 160 ms of tone
ENDS = 3
AUDIBLE = 1000  # a 16-bit sample above this (about -30 dBFS) is sound, not silence


def _alaw_to_linear(byte: int) -> int:
    value = byte ^ 0x55
    magnitude = (value & 0x0F) << 4
    segment = (value & 0x70) >> 4
    if segment == 0:
        magnitude += 8
    elif segment == 1:
        magnitude += 0x108
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if value & 0x80 else -magnitude


ALAW = [_alaw_to_linear(b) for b in range(256)]
AUDIBLE_ALAW = bytes(b for b in range(256) if abs(ALAW[b]) > AUDIBLE)


def audible(payload: bytes) -> bool:
    """Whether a G.711 A-law payload holds sound (one loud sample is enough)."""
    return any(b in AUDIBLE_ALAW for b in payload[::4])


def event_packets(digit: str, sequence: int, timestamp: int, ssrc: int) -> list[tuple[float, bool, bytes]]:
    """One digit's packets: (offset seconds, is an end packet, datagram)."""
    code = EVENT_CODES[digit]
    packets = []
    for n in range(UPDATES + ENDS):
        end = n >= UPDATES
        duration = 160 * min(n + 1, UPDATES)
        header = struct.pack(
            "!BBHII",
            0x80,
            (0x80 if n == 0 else 0) | TELEPHONE_EVENT,
            (sequence + n) & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)
        packets.append((n * PACKET_SECONDS, end, header + payload))
    return packets


@dataclass
class PeerCall:
    """One call's media at the carrier (``time.time()`` stamps)."""

    port: int
    sock: socket.socket
    remote: tuple[str, int] | None = None
    first_packet_at: float | None = None
    prompt_at: float | None = None  # the first audible packet
    digit_started: list[float] = field(default_factory=list)  # each digit's first packet sent
    digit_ended: list[float] = field(default_factory=list)  # each digit's first end packet sent
    last_sent_at: float | None = None  # the last end packet of the last digit
    packets: int = 0  # received before the prompt was heard, and the audible one


class RtpPeer:
    """``count`` sockets on 127.0.0.1, served by one thread until ``stop``."""

    def __init__(self, count: int, digits: str, delay: float, gap: float = 0.1) -> None:
        self.digits = digits
        self.delay = delay
        self.gap = gap
        self.calls: list[PeerCall] = []
        self._index: dict[int, int] = {}  # port -> call
        self._selector = selectors.DefaultSelector()
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            call = PeerCall(sock.getsockname()[1], sock)
            self._index[call.port] = len(self.calls)
            self.calls.append(call)
            self._selector.register(sock, selectors.EVENT_READ, call)
        self._sends: list[tuple[float, int, int, str, bytes]] = []  # (due, order, call, kind, datagram)
        self._order = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rtp-peer", daemon=True)

    @property
    def ports(self) -> list[int]:
        return [c.port for c in self.calls]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._selector.close()
        for call in self.calls:
            call.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            while self._sends and self._sends[0][0] <= now:
                self._send(heapq.heappop(self._sends))
            timeout = min(0.05, max(0.0, self._sends[0][0] - time.time())) if self._sends else 0.05
            for key, _ in self._selector.select(timeout):
                self._receive(key.data)

    def _receive(self, call: PeerCall) -> None:
        while True:
            try:
                data, address = call.sock.recvfrom(2048)
            except BlockingIOError:
                return
            at = time.time()
            call.packets += 1
            if call.first_packet_at is None:
                call.first_packet_at = at
            call.remote = address
            if len(data) > 12 and data[1] & 0x7F == PCMA and audible(data[12:]):
                call.prompt_at = at
                self._selector.unregister(call.sock)  # heard: the rest of the prompt is not read
                self._schedule_digits(call, at + self.delay)
                return

    def _schedule_digits(self, call: PeerCall, start: float) -> None:
        index = self._index[call.port]
        ssrc = int.from_bytes(os.urandom(4), "big")
        sequence, timestamp = int.from_bytes(os.urandom(2), "big"), int.from_bytes(os.urandom(3), "big")
        due = start
        for number, digit in enumerate(self.digits):
            packets = event_packets(digit, sequence, timestamp, ssrc)
            for n, (offset, end, datagram) in enumerate(packets):
                kind = "start" if n == 0 else "end" if end and packets[n - 1][1] is False else ""
                if number == len(self.digits) - 1 and n == len(packets) - 1:
                    kind = "last"
                self._order += 1
                heapq.heappush(self._sends, (due + offset, self._order, index, kind, datagram))
            sequence += len(packets)
            span = packets[-1][0] + PACKET_SECONDS + self.gap
            due += span
            timestamp += int(span * 8000)

    def _send(self, item: tuple[float, int, int, str, bytes]) -> None:
        _, _, index, kind, datagram = item
        call = self.calls[index]
        if call.remote is None:
            return
        try:
            call.sock.sendto(datagram, call.remote)
        except OSError:
            return
        at = time.time()
        if kind == "start":
            call.digit_started.append(at)
        elif kind == "end":
            call.digit_ended.append(at)
        elif kind == "last":
            call.last_sent_at = at
