"""A token bucket: at most ``rate`` operations per second on average, bursts up to ``burst``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Thread-safe. ``reserve()`` takes one token now and says how long to wait before using it.

    Taking the token up front (the bucket may go into debt) keeps concurrent callers in a fair
    first-come order without holding the lock while they sleep. ``rate <= 0`` means unlimited.
    """

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = 0.0
        self._burst = 1.0
        self._tokens = 0.0
        self._updated = clock()
        self.configure(rate, burst)

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def configure(self, rate: float, burst: float | None = None) -> None:
        """Change the rate (and burst; by default a tenth of a second's worth, at least 1)."""
        with self._lock:
            self._rate = max(0.0, float(rate))
            self._burst = max(1.0, float(burst) if burst is not None else self._rate / 10)
            self._tokens = min(self._tokens, self._burst) if self._tokens else self._burst
            self._updated = self._clock()

    def reserve(self, count: float = 1.0) -> float:
        """Take ``count`` tokens; return the seconds to wait before acting (0.0 when available)."""
        with self._lock:
            if self._rate <= 0:
                return 0.0
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            self._tokens -= count
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self._rate

    def refund(self, count: float = 1.0) -> None:
        """Give back tokens reserved for an operation that did not happen."""
        with self._lock:
            self._tokens = min(self._burst, self._tokens + count)
