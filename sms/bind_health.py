"""What an operator is shown of one bind: bound, connecting or failing, since when, the last
error, and how many messages it sent in the last minute. Pure: the runtime passes the clock.

``BindHealth`` folds the bind's state changes and failures into the operator's three words (a
bind that keeps retrying stays ``failing`` since its first failure, not since its last retry);
``RecentCount`` counts events over a sliding minute in one-second buckets.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Final

from sms.bind_types import BindState

RECENT_SECONDS: Final = 60


class Health(enum.StrEnum):
    """A bind as the operator sees it."""

    BOUND = "bound"
    CONNECTING = "connecting"  # not bound yet, and nothing has failed since it last was
    FAILING = "failing"  # the last bind attempt failed, or the link was lost; retrying
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class BindStatus:
    """One bind's published status (``since`` on the wall clock, seconds since the epoch)."""

    health: Health
    state: BindState
    since: float
    last_error: str
    window_in_use: int
    sent_last_minute: int


class RecentCount:
    """How many events happened in the last ``RECENT_SECONDS`` (whole seconds; not thread-safe)."""

    def __init__(self, seconds: int = RECENT_SECONDS) -> None:
        self._seconds = seconds
        self._buckets: deque[list[int]] = deque()  # [second, count], oldest first

    def add(self, now: float, amount: int = 1) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += amount
        else:
            self._buckets.append([second, amount])
        self._trim(second)

    def total(self, now: float) -> int:
        self._trim(int(now))
        return sum(count for _, count in self._buckets)

    def _trim(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self._seconds:
            self._buckets.popleft()


class BindHealth:
    """Folds a bind's state changes and failures into a ``Health`` and since when it holds."""

    def __init__(self, now: float) -> None:
        self.health = Health.CONNECTING
        self.since = now
        self.last_error = ""
        self._failed = False  # a failure since the bind was last bound

    def state_changed(self, state: BindState, now: float) -> None:
        if state is BindState.BOUND:
            self._failed = False
        self._become(self._health_of(state), now)

    def failed(self, error: str, now: float) -> None:
        """A bind attempt failed or the link was lost (``error`` names why)."""
        self.last_error = error
        self._failed = True
        self._become(Health.FAILING, now)

    def _health_of(self, state: BindState) -> Health:
        if state is BindState.BOUND:
            return Health.BOUND
        if state in (BindState.STOPPED, BindState.UNBINDING):
            return Health.STOPPED
        return Health.FAILING if self._failed else Health.CONNECTING

    def _become(self, health: Health, now: float) -> None:
        if health is not self.health:
            self.health = health
            self.since = now
