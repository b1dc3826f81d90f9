"""Test helpers for the SIP worker: free ports, SIPp as the carrier, an RTP peer, event waits."""

from __future__ import annotations

import random
import shutil
import socket
import struct
import subprocess
import threading
import time
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


class RtpPeer:
    """The carrier's RTP endpoint: records what the worker sends, sends PCMA back to it.

    Until it hears the worker it sends nothing (it learns the worker's address from the first
    packet). It sends ``audio`` (16-bit samples, repeated) when set, else A-law silence; a test
    may change ``audio`` at any time. ``packets`` keeps every received (payload type, payload).
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
        self.first_packet_at: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        remote: tuple[str, int] | None = None
        seq, stamp, position, next_send = 0, 0, 0, time.monotonic()
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
            except TimeoutError:
                pass
            if remote is not None and time.monotonic() >= next_send:
                audio = self.audio
                if audio:
                    frame = [audio[(position + i) % len(audio)] for i in range(FRAME)]
                    payload, position = alaw_encode(frame), position + FRAME
                else:
                    payload = b"\xd5" * FRAME
                header = struct.pack("!BBHII", 0x80, PCMA, seq & 0xFFFF, stamp & 0xFFFFFFFF, 0x7E57AB1E)
                self.sock.sendto(header + payload, remote)
                self.sent += 1
                seq, stamp, next_send = seq + 1, stamp + FRAME, next_send + 0.02

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
