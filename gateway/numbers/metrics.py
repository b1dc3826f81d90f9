"""Prometheus counters of the tenant numbers API (holds, purchases, releases)."""

from __future__ import annotations

from prometheus_client import Counter

NUMBERS_HELD = Counter(
    "trunkline_numbers_held_total", "Numbers put on hold by searches and reservations", ["kind"]
)
NUMBERS_PURCHASED = Counter("trunkline_numbers_purchased_total", "Numbers purchased")
NUMBERS_RELEASED = Counter("trunkline_numbers_released_total", "Numbers released")
