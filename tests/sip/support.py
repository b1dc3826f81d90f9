"""Test helpers for the SIP worker: free ports, SIPp as the carrier, an RTP peer, event waits."""

from __future__ import annotations

import math
import random
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import TypeVar

import pytest

from sip.worker.messages import CallState, CallStateChanged, Event
from sip.worker.pool import WorkerEvent, WorkerPool

SCENARIOS = Path(__file__).parent / "scenarios"
HOST = "127.0.0.1"
E = TypeVar("E", bound=Event)


def require(tool: str) -> str:
    """The tool's path; a missing tool FAILS the test (bootstrap --dev installs it)."""
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if path is None:
        pytest.fail(f"{tool} is missing: run scripts/bootstrap.sh --dev", pytrace=False)
    return path


def free_udp_block(count: int, *, low: int = 30000, high: int = 60000) -> int:
    """A base port such that base..base+count-1 are all free for UDP on 127.0.0.1."""
    for _ in range(200):
        base = random.randrange(low, high - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind((HOST, port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no free UDP port block")


def next_event(pool: WorkerPool, kind: type[E], call_id: str | None = None, timeout: float = 10.0) -> E:
    """The next event of ``kind`` (for ``call_id`` if given); others are dropped."""
    return next_worker_event(pool, kind, call_id, timeout).event  # type: ignore[return-value]


def next_worker_event(
    pool: WorkerPool, kind: type[Event], call_id: str | None = None, timeout: float = 10.0
) -> WorkerEvent:
    deadline = time.monotonic() + timeout
    seen: list[Event] = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = pool.events.get(timeout=left)
        except Exception:
            break
        seen.append(item.event)
        if _is(item.event, kind) and (call_id is None or getattr(item.event, "call_id", None) == call_id):
            return item
    name = getattr(kind, "__name__", "event")
    raise AssertionError(f"no {name} for {call_id} within {timeout:.0f}s; saw {seen}")


def events_until(pool: WorkerPool, call_id: str, state: CallState, timeout: float = 10.0) -> list[Event]:
    """Every event of ``call_id`` up to the first change to ``state`` (included)."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = next_event(pool, Event, call_id, timeout=left)  # type: ignore[type-abstract]
        seen.append(event)
        if isinstance(event, CallStateChanged) and event.state is state:
            return seen
    raise AssertionError(f"{call_id} never reached {state}; saw {seen}")


def _is(event: Event, kind: object) -> bool:
    return kind is Event or isinstance(event, kind)  # type: ignore[arg-type]


class Sipp:
    """One SIPp process (started by the test, killed by its pid at the end)."""

    def __init__(
        self, tmp_path: Path, scenario: Path, *args: str, target: str | None = None, calls: int = 1
    ) -> None:
        self.port = free_udp_block(1)
        self.media_port = free_udp_block(4)
        command = [
            require("sipp"),
            *([target] if target else []),
            "-sf",
            str(scenario),
            "-i",
            HOST,
            "-p",
            str(self.port),
            "-mi",
            HOST,
            "-mp",
            str(self.media_port),
            "-m",
            str(calls),
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_err",
            "-trace_msg",
            *args,
        ]
        self.log_dir = tmp_path
        self.process = subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def errors(self) -> str:
        stderr = self.process.stderr.read() if self.process.stderr and self.process.poll() is not None else ""
        logs = "".join(p.read_text(errors="replace") for p in self.log_dir.glob("*_errors.log"))
        return f"{stderr}\n{logs}"

    def messages(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_dir.glob("*_messages.log"))


DTMF_EVENTS = "0123456789*#ABCD"  # RFC 4733 event codes 0-15
TELEPHONE_EVENT = 101  # the payload type the carrier scenarios offer for telephone-event
DTMF_FREQUENCIES = {
    digit: (low, high)
    for low, row in zip((697, 770, 852, 941), ("123A", "456B", "789C", "*0#D"), strict=True)
    for high, digit in zip((1209, 1336, 1477, 1633), row, strict=True)
}


def alaw(samples: list[int]) -> bytes:
    """16-bit linear samples as G.711 A-law bytes (the PCMA the carrier scenarios negotiate)."""
    out = bytearray()
    for sample in samples:
        sign = 0x80 if sample >= 0 else 0
        magnitude = (sample if sample >= 0 else -sample - 1) >> 3
        if magnitude < 32:
            code = magnitude >> 1
        else:
            exponent = magnitude.bit_length() - 5
            code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
        out.append((code | sign) ^ 0x55)
    return bytes(out)


def dtmf_tone(digit: str, ms: int, level_dbm0: float = -10.0) -> list[int]:
    """The two sines of a DTMF key, ``ms`` long, each at ``level_dbm0``."""
    low, high = DTMF_FREQUENCIES[digit]
    amplitude = 22713 * 10 ** (level_dbm0 / 20)  # 0 dBm0 peak in 16-bit linear
    return [
        round(amplitude * (math.sin(2 * math.pi * low * n / 8000) + math.sin(2 * math.pi * high * n / 8000)))
        for n in range(ms * 8)
    ]


class RtpPeer:
    """The carrier's RTP endpoint: counts the worker's packets, records its telephone-events,
    and sends PCMA back: silence, or what a test queued (RFC 2833 events, in-band tone audio)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.005)
        self.port: int = self.sock.getsockname()[1]
        self.received = 0
        self.sent = 0
        self.events: list[tuple[int, int, bool, int]] = []  # (timestamp, event, end, duration)
        # (payload type, starts an event, payload, advances the clock, ends a key press)
        self._script: deque[tuple[int, bool, bytes, bool, bool]] = deque()
        self.key_ends: list[float] = []  # monotonic time each queued key press ended on the wire
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def press_rfc2833(self, digit: str, ms: int = 100, *, end_packets: int = 3, pause_ms: int = 100) -> None:
        """Queue one key press as RFC 2833 packets (one per 20 ms, then the end packets), then a pause."""
        code, units = DTMF_EVENTS.index(digit), ms * 8
        for step in range(1, units // 160 + 1):
            packet = struct.pack("!BBH", code, 10, step * 160)
            self._script.append((TELEPHONE_EVENT, step == 1, packet, True, False))
        for index in range(end_packets):
            last = index == end_packets - 1
            packet = struct.pack("!BBH", code, 0x80 | 10, units)
            self._script.append((TELEPHONE_EVENT, False, packet, last, index == 0))
        self.play_audio([0] * pause_ms * 8)

    def press_inband(self, digit: str, ms: int = 80, *, pause_ms: int = 80, level_dbm0: float = -10) -> None:
        """Queue one key press as tones in the PCMA audio, then silence."""
        self.play_audio(dtmf_tone(digit, ms, level_dbm0), key=True)
        self.play_audio([0] * pause_ms * 8)

    def play_audio(self, samples: list[int], *, key: bool = False) -> None:
        """Queue PCMA frames; ``key``: the audio is a key press whose end ``key_ends`` records."""
        samples = samples + [0] * (-len(samples) % 160)
        for start in range(0, len(samples), 160):
            last = start + 160 >= len(samples)
            self._script.append((8, False, alaw(samples[start : start + 160]), True, key and last))

    def decoded_digits(self) -> str:
        """The keys the worker sent as telephone-events: one per event timestamp that ended."""
        digits: dict[int, str] = {}
        for stamp, event, end, _ in self.events:
            if end and stamp not in digits:
                digits[stamp] = DTMF_EVENTS[event] if event < len(DTMF_EVENTS) else "?"
        return "".join(digits[stamp] for stamp in sorted(digits))

    def _run(self) -> None:
        remote: tuple[str, int] | None = None
        seq, stamp, next_send = 0, 0, time.monotonic()
        event_stamp = 0
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                packet, remote = self.sock.recvfrom(2048)
                self.received += 1
                if len(packet) >= 16 and packet[1] & 0x7F == TELEPHONE_EVENT:
                    stamp_in = struct.unpack("!I", packet[4:8])[0]
                    event, flags, duration = struct.unpack("!BBH", packet[12:16])
                    self.events.append((stamp_in, event, bool(flags & 0x80), duration))
            except TimeoutError:
                pass
            if remote is None or time.monotonic() < next_send:
                continue
            pt, marker, payload, advance, key_end = 8, False, b"\xd5" * 160, True, False
            if self._script:
                pt, marker, payload, advance, key_end = self._script.popleft()
            if marker:
                event_stamp = stamp
            header = struct.pack(
                "!BBHII",
                0x80,
                pt | (0x80 if marker else 0),
                seq & 0xFFFF,
                (event_stamp if pt == TELEPHONE_EVENT else stamp) & 0xFFFFFFFF,
                0x7E57AB1E,
            )
            self.sock.sendto(header + payload, remote)
            if key_end:
                self.key_ends.append(time.monotonic())
            self.sent += 1
            seq += 1
            if advance:
                stamp, next_send = stamp + 160, next_send + 0.02

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
