"""The submit window: sequence number → pending request, at most ``size`` outstanding.

smpplib has no window. The bind takes a slot before writing a submit_sm, registers it under its
sequence number, and the reader thread resolves it by sequence number when the submit_sm_resp
arrives, in whatever order the SMSC answers. Entries past their deadline are expired by the
bind's housekeeping; a dropped connection fails every entry at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Pending(Generic[T]):
    sequence: int
    item: T
    sent_at: float
    deadline: float


class Window(Generic[T]):
    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self._size = size
        self._clock = clock
        self._pending: dict[int, Pending[T]] = {}
        self._reserved = 0
        self._condition = threading.Condition()

    @property
    def size(self) -> int:
        return self._size

    def in_use(self) -> int:
        """Slots taken: registered entries plus slots acquired but not yet registered."""
        with self._condition:
            return len(self._pending) + self._reserved

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for a free slot and reserve it; False when none freed up within ``timeout``."""
        with self._condition:
            ok = self._condition.wait_for(lambda: len(self._pending) + self._reserved < self._size, timeout)
            if ok:
                self._reserved += 1
            return ok

    def release(self) -> None:
        """Give back a reserved slot that was never registered (the write did not happen)."""
        with self._condition:
            self._reserved -= 1
            self._condition.notify_all()

    def register(self, sequence: int, item: T, timeout: float) -> Pending[T]:
        """Turn a reserved slot into an entry for ``sequence``, due within ``timeout`` seconds."""
        now = self._clock()
        entry = Pending(sequence, item, now, now + timeout)
        with self._condition:
            if sequence in self._pending:
                raise KeyError(f"sequence {sequence} is already in the window")
            self._reserved -= 1
            self._pending[sequence] = entry
        return entry

    def resolve(self, sequence: int) -> Pending[T] | None:
        """Remove and return the entry for ``sequence`` (None if unknown or already expired)."""
        with self._condition:
            entry = self._pending.pop(sequence, None)
            if entry is not None:
                self._condition.notify_all()
            return entry

    def expire(self, now: float | None = None) -> list[Pending[T]]:
        """Remove and return every entry whose deadline has passed."""
        now = self._clock() if now is None else now
        with self._condition:
            expired = [entry for entry in self._pending.values() if entry.deadline <= now]
            for entry in expired:
                del self._pending[entry.sequence]
            if expired:
                self._condition.notify_all()
            return expired

    def drain(self) -> list[Pending[T]]:
        """Remove and return every entry (the connection is gone)."""
        with self._condition:
            entries = list(self._pending.values())
            self._pending.clear()
            self._condition.notify_all()
            return entries

    def wait_empty(self, timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending and not self._reserved, timeout)

    def wake(self) -> None:
        """Wake threads blocked in acquire() so they can re-check why they wait."""
        with self._condition:
            self._condition.notify_all()
