"""The RTP packet counts of a SIP process's connected calls, as their workers report them.

The controller asks each connected call's worker for its stream's counters every media poll
period (``QueryMedia`` → ``MediaStats``). Two uses: the Prometheus packet counters grow by what
is new since the last report, and a call that ends having received or sent nothing in a report
is one-way or silent audio, the classic symptom of a NAT, a firewall or a wrong SDP address
that an operator needs to hear about. Pure bookkeeping, thread-safe (the timer thread asks,
the event lanes report and end calls).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(slots=True)
class _Counts:
    received: int = 0
    sent: int = 0
    reports: int = 0


@dataclass(frozen=True, slots=True)
class Silence:
    """A call that ended with no packet by its last report: ``missing`` is "received", "sent"
    or "both" (its direction with none)."""

    missing: str
    received: int
    sent: int


class RtpCounts:
    def __init__(self) -> None:
        self._calls: dict[str, _Counts] = {}  # connected legs, by id
        self._lock = threading.Lock()

    def connected(self, leg_id: str) -> None:
        with self._lock:
            self._calls.setdefault(leg_id, _Counts())

    def legs(self) -> list[str]:
        with self._lock:
            return list(self._calls)

    def report(self, leg_id: str, received: int, sent: int) -> tuple[int, int] | None:
        """A worker's counters for a connected leg: the packets new since its last report each
        way (counters never go back), or None for a leg that is not connected here."""
        with self._lock:
            counts = self._calls.get(leg_id)
            if counts is None:
                return None
            new = (max(0, received - counts.received), max(0, sent - counts.sent))
            counts.received, counts.sent = max(counts.received, received), max(counts.sent, sent)
            counts.reports += 1
            return new

    def ended(self, leg_id: str) -> Silence | None:
        """Forget a leg; a Silence if a report came and showed a direction with no packet."""
        with self._lock:
            counts = self._calls.pop(leg_id, None)
        if counts is None or counts.reports == 0 or (counts.received and counts.sent):
            return None
        if not counts.received and not counts.sent:
            missing = "both"
        else:
            missing = "sent" if counts.received else "received"
        return Silence(missing, counts.received, counts.sent)
