"""The submit window: sequence number → pending request, at most ``size`` outstanding. Sans-IO.

smpplib has no window. A slot is reserved before a submit_sm is written and turned into an
entry under its sequence number when it is; the entry is resolved by sequence number when the
submit_sm_resp arrives, in whatever order the SMSC answers, expired past its deadline, or
drained when the connection drops. No lock and no clock: the owner (``sms.esme.Esme``) passes
the time in, and the runtime serialises calls and does any waiting for a free slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class Pending(Generic[T, R]):
    """One written submit awaiting its resp; ``result`` is what the owner decided on resolving it."""

    sequence: int
    item: T
    sent_at: float
    deadline: float
    result: R | None = None


class WindowError(RuntimeError):
    """The window was used out of order (a slot registered or released without a reservation)."""


class Window(Generic[T, R]):
    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self._size = size
        self._pending: dict[int, Pending[T, R]] = {}
        self._reserved = 0

    @property
    def size(self) -> int:
        return self._size

    def in_use(self) -> int:
        """Slots taken: registered entries plus slots reserved but not yet registered."""
        return len(self._pending) + self._reserved

    def idle(self) -> bool:
        """Nothing outstanding and nothing reserved."""
        return not self._pending and not self._reserved

    def __contains__(self, sequence: int) -> bool:
        return sequence in self._pending

    def reserve(self) -> bool:
        """Take a free slot; False when all ``size`` are in use."""
        if len(self._pending) + self._reserved >= self._size:
            return False
        self._reserved += 1
        return True

    def release(self) -> None:
        """Give back a reserved slot that was never registered (the write did not happen)."""
        if not self._reserved:
            raise WindowError("release without a reserved slot")
        self._reserved -= 1

    def register(self, sequence: int, item: T, now: float, timeout: float) -> Pending[T, R]:
        """Turn a reserved slot into the entry for ``sequence``, due within ``timeout`` seconds."""
        if sequence in self._pending:
            raise KeyError(f"sequence {sequence} is already in the window")
        if not self._reserved:
            raise WindowError("register without a reserved slot")
        entry: Pending[T, R] = Pending(sequence, item, now, now + timeout)
        self._reserved -= 1
        self._pending[sequence] = entry
        return entry

    def resolve(self, sequence: int) -> Pending[T, R] | None:
        """Remove and return the entry for ``sequence`` (None if unknown or already expired)."""
        return self._pending.pop(sequence, None)

    def expire(self, now: float) -> list[Pending[T, R]]:
        """Remove and return every entry whose deadline has passed."""
        expired = [entry for entry in self._pending.values() if entry.deadline <= now]
        for entry in expired:
            del self._pending[entry.sequence]
        return expired

    def drain(self) -> list[Pending[T, R]]:
        """Remove and return every entry (the connection is gone)."""
        entries = list(self._pending.values())
        self._pending.clear()
        return entries
