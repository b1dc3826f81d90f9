"""When the controller needs to look for calls that rang out, instead of looking at every tick.

The ring timer is the database's (a call's ``ring_deadline``, read by ``rings_due``), so that a
restarted SIP process still ends the calls its predecessor offered. Asking the database four
times a second was most of an idle SIP process's queries and a twelfth of a busy one's CPU
(py-spy, 10 calls/s), while nearly every call is answered or hung up long before its
deadline. This keeps the deadlines of the calls this process offered and has not heard of
since: the query runs only when one of those passed (and once at start, for a predecessor's).
"""

from __future__ import annotations

import heapq
import threading
from datetime import datetime


class RingTimers:
    def __init__(self) -> None:
        self._deadlines: list[tuple[datetime, str]] = []  # a heap; heard-of calls stay, skipped
        self._ringing: set[str] = set()  # offered calls no leg event has come for yet
        self._unknown = True  # a predecessor's offered calls, until the first look
        self._lock = threading.Lock()  # the event lanes offer and hear; the timer thread asks

    def offered(self, call_id: str, deadline: datetime) -> None:
        with self._lock:
            self._ringing.add(call_id)
            heapq.heappush(self._deadlines, (deadline, call_id))

    def heard(self, call_id: str) -> None:
        """A leg of the call connected or ended: its ringing is over one way or the other."""
        with self._lock:
            self._ringing.discard(call_id)

    def again(self) -> None:
        """The look that followed a True failed (the database away): look at the next tick too."""
        with self._lock:
            self._unknown = True

    def look(self, now: datetime) -> bool:
        """Whether a ring deadline may have passed by ``now`` (the caller then asks the database)."""
        with self._lock:
            due = self._unknown
            self._unknown = False
            while self._deadlines and self._deadlines[0][0] <= now:
                _, call_id = heapq.heappop(self._deadlines)
                if call_id in self._ringing:
                    self._ringing.discard(call_id)
                    due = True
            return due
