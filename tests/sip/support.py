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
from tests.sip.audio import FRAME, PCMA, PCMU, alaw_encode, g711_decode

SCENARIOS = Path(__file__).parent / "scenarios"
HOST = "127.0.0.1"
E = TypeVar("E", bound=Event)


def require(tool: str) -> str:
    """The tool's path; a missing tool FAILS the test (bootstrap --dev installs it)."""
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists() else None)
    if path is None:
        pytest.fail(f"{tool} is missing: run scripts/bootstrap.sh --dev", pytrace=False)
    return path


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (32768 by Linux's default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_udp_block(count: int, *, low: int = 10000, high: int | None = None, tcp: bool = False) -> int:
    """A base port such that base..base+count-1 are all free for UDP on 127.0.0.1 (and for TCP
    too with ``tcp``: a SIP TLS port).

    Below the kernel's ephemeral range by default: a socket that binds port 0 or sends unbound
    (SIPp's, an RTP peer's, a resolver's) never takes a port of the block after the check.
    Inside that range a 400-call run's SIPp took whole worker RTP ranges: pjsua found no port
    to bind and answered 500."""
    if high is None:
        high = _ephemeral_start()
        if high - low < 8 * count:  # a machine whose ephemeral range starts low
            low, high = 30000, 60000
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if tcp else (socket.SOCK_DGRAM,)
    for _ in range(200):
        base = random.randrange(low, high - count)
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                for kind in kinds:
                    sock = socket.socket(socket.AF_INET, kind)
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


def dtmf_tone(digit: str, ms: int, level_dbm0: float = -10.0) -> list[int]:
    """The two sines of a DTMF key, ``ms`` long, each at ``level_dbm0``."""
    low, high = DTMF_FREQUENCIES[digit]
    amplitude = 22713 * 10 ** (level_dbm0 / 20)  # 0 dBm0 peak in 16-bit linear
    return [
        round(amplitude * (math.sin(2 * math.pi * low * n / 8000) + math.sin(2 * math.pi * high * n / 8000)))
        for n in range(ms * 8)
    ]


class RtpPeer:
    """The carrier's RTP endpoint: records what the worker sends, sends PCMA back to it.

    Until it hears the worker it sends nothing (it learns the worker's address from the first
    packet). It sends what a test queued (``press_rfc2833``, ``press_inband``, ``play_audio``:
    key presses as telephone-events or as tones), else ``audio`` (16-bit samples, repeated) when
    set, else A-law silence; a test may change ``audio`` at any time. ``packets`` keeps every
    received (arrival, payload type, payload); ``events`` the telephone-events among them.
    """

    def __init__(self, audio: list[int] | None = None, *, record: bool = True) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.005)
        self.port: int = self.sock.getsockname()[1]
        self.received = 0
        self.sent = 0
        self.audio = audio
        self.record = record
        self.packets: list[tuple[float, int, bytes]] = []  # (arrival, payload type, payload)
        self.events: list[tuple[int, int, bool, int]] = []  # (timestamp, event, end, duration)
        self.first_packet_at: float | None = None
        # (payload type, starts an event, payload, advances the clock, ends a key press)
        self._script: deque[tuple[int, bool, bytes, bool, bool]] = deque()
        self.key_ends: list[float] = []  # monotonic time each queued key press ended on the wire
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def press_rfc2833(self, digit: str, ms: int = 100, *, end_packets: int = 3, pause_ms: int = 100) -> None:
        """Queue one key press as RFC 2833 packets (one per 20 ms, then the end packets), then a pause."""
        code, units = DTMF_EVENTS.index(digit), ms * 8
        for step in range(1, units // FRAME + 1):
            packet = struct.pack("!BBH", code, 10, step * FRAME)
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
        samples = samples + [0] * (-len(samples) % FRAME)
        for start in range(0, len(samples), FRAME):
            last = start + FRAME >= len(samples)
            self._script.append(
                (PCMA, False, alaw_encode(samples[start : start + FRAME]), True, key and last)
            )

    def decoded_digits(self) -> str:
        """The keys the worker sent as telephone-events: one per event timestamp that ended."""
        digits: dict[int, str] = {}
        for stamp, event, end, _ in list(self.events):
            if end and stamp not in digits:
                digits[stamp] = DTMF_EVENTS[event] if event < len(DTMF_EVENTS) else "?"
        return "".join(digits[stamp] for stamp in sorted(digits))

    def _run(self) -> None:
        remote: tuple[str, int] | None = None
        seq, stamp, position, next_send = 0, 0, 0, time.monotonic()
        event_stamp = 0
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data, remote = self.sock.recvfrom(2048)
                self.received += 1
                if self.first_packet_at is None:
                    self.first_packet_at = time.monotonic()
                if self.record and len(data) > 12:
                    with self._lock:
                        self.packets.append((time.monotonic(), data[1] & 0x7F, data[12:]))
                if len(data) >= 16 and data[1] & 0x7F == TELEPHONE_EVENT:
                    event, flags, duration = struct.unpack("!BBH", data[12:16])
                    self.events.append(
                        (struct.unpack("!I", data[4:8])[0], event, bool(flags & 0x80), duration)
                    )
            except TimeoutError:
                pass
            if remote is None or time.monotonic() < next_send:
                continue
            payload_type, marker, advance, key_end = PCMA, False, True, False
            if self._script:
                payload_type, marker, payload, advance, key_end = self._script.popleft()
            elif self.audio:
                audio = self.audio
                frame = [audio[(position + i) % len(audio)] for i in range(FRAME)]
                payload, position = alaw_encode(frame), position + FRAME
            else:
                payload = b"\xd5" * FRAME
            if marker:
                event_stamp = stamp
            header = struct.pack(
                "!BBHII",
                0x80,
                payload_type | (0x80 if marker else 0),
                seq & 0xFFFF,
                (event_stamp if payload_type == TELEPHONE_EVENT else stamp) & 0xFFFFFFFF,
                0x7E57AB1E,
            )
            self.sock.sendto(header + payload, remote)
            if key_end:
                self.key_ends.append(time.monotonic())
            self.sent += 1
            seq += 1
            if advance:
                stamp, next_send = stamp + FRAME, next_send + 0.02

    def pcm(self, since: float = 0.0) -> list[int]:
        """The G.711 audio received after ``since`` (monotonic time), decoded to 16-bit samples."""
        with self._lock:
            packets = [p for p in self.packets if p[0] >= since]
        samples: list[int] = []
        for _, payload_type, payload in packets:
            if payload_type in (PCMA, PCMU):
                samples.extend(g711_decode(payload_type, payload))
        return samples

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
