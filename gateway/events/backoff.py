"""Retry rules and the backoff schedule (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

# Event Grid does not retry these; the event is dead-lettered at once.
NO_RETRY_STATUS = frozenset({400, 401, 403, 404, 413})


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD_LETTER = "deadLetter"


def classify_status(status: int | None) -> Outcome:
    """What a response (None: timeout or connection error) means for the delivery."""
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in NO_RETRY_STATUS:
        return Outcome.DEAD_LETTER
    # 408, 429, 5xx and anything else unexpected (3xx: redirects are not followed) are retried.
    return Outcome.RETRY


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 10.0
    max_seconds: float = 3600.0
    jitter_ratio: float = 0.2

    def nominal(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` after ``attempt`` failures (attempt >= 1)."""
        if attempt < 1:
            raise ValueError("attempt counts from 1")
        exponent = min(attempt - 1, 62)
        return float(min(self.max_seconds, self.base_seconds * (2.0**exponent)))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """``nominal`` with jitter of +-``jitter_ratio``, never above ``max_seconds``."""
        nominal = self.nominal(attempt)
        spread = nominal * self.jitter_ratio
        value = nominal + (rng or random).uniform(-spread, spread)
        return max(0.0, min(self.max_seconds, value))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given as delta-seconds (HTTP dates are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
