"""The app of bench/calls.py's pool mode: answers every IncomingCall at once, straight on the pool.

It drains ``SipRuntime.events`` on its own thread (what ``run_sip``'s handler does): each
IncomingCall gets ``Ring`` and ``Answer`` at once, and each call connected for ``probe_after``
seconds gets one ``QueryMedia``, whose ``MediaStats`` show RTP flowing both ways. It keeps the
wall-clock times the benchmark joins with SIPp's (by SIP Call-ID) and every failure it sees.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from sip.worker.main import SipRuntime
from sip.worker.messages import (
    Answer,
    CallState,
    CallStateChanged,
    CommandFailed,
    IncomingCall,
    MediaActive,
    MediaStats,
    QueryMedia,
    Ring,
)


@dataclass
class CallRecord:
    """One inbound call as the app saw it (``time.time()`` stamps)."""

    sip_call_id: str
    worker: int
    incoming_at: float
    answered_at: float | None = None
    connected_at: float | None = None
    media: bool = False
    ended_at: float | None = None
    end_status: int = 0
    end_reason: str = ""
    probed: bool = False
    rx_packets: int | None = None
    tx_packets: int | None = None

    @property
    def failed(self) -> bool:
        return self.ended_at is not None and self.connected_at is None


@dataclass
class AnsweringApp:
    runtime: SipRuntime
    probe_after: float
    calls: dict[str, CallRecord] = field(default_factory=dict)  # by the pool's call id
    command_failures: list[CommandFailed] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _next_probe: float = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bench-app", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def ended(self) -> int:
        return sum(1 for c in list(self.calls.values()) if c.ended_at is not None)

    def wait_ended(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.ended() < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.ended() >= count

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.runtime.events.get(timeout=0.1)
            except queue.Empty:
                item = None
            if item is not None:
                self._on_event(item.worker, item.event)
            self._probe()

    def _on_event(self, worker: int, event: object) -> None:
        now = time.time()
        if isinstance(event, IncomingCall):
            incoming = CallRecord(event.sip_call_id, worker, now)
            self.calls[event.call_id] = incoming
            self.runtime.send(Ring(event.call_id))
            self.runtime.send(Answer(event.call_id))
            incoming.answered_at = time.time()
            return
        record = self.calls.get(getattr(event, "call_id", ""))
        if isinstance(event, CommandFailed):
            self.command_failures.append(event)
        elif record is None:
            return
        elif isinstance(event, CallStateChanged):
            if event.state is CallState.CONNECTED and record.connected_at is None:
                record.connected_at = now
            elif event.state is CallState.DISCONNECTED:
                record.ended_at, record.end_status, record.end_reason = now, event.status, event.reason
        elif isinstance(event, MediaActive):
            record.media = True
        elif isinstance(event, MediaStats):
            record.rx_packets, record.tx_packets = event.rx_packets, event.tx_packets

    def _probe(self) -> None:
        now = time.time()
        if now < self._next_probe:
            return
        self._next_probe = now + 0.25
        for call_id, record in self.calls.items():
            if (
                not record.probed
                and record.ended_at is None
                and record.connected_at is not None
                and now - record.connected_at >= self.probe_after
            ):
                record.probed = True
                self.runtime.send(QueryMedia(call_id))
