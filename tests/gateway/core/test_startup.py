"""freeze_startup_objects (gateway/core/startup.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.core.startup import freeze_startup_objects


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_objects_alive_at_start_up_leave_the_collector_and_later_ones_are_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    freeze_startup_objects()
    assert gc.get_freeze_count() > 0
    collected: list[int] = []

    def later_cycle() -> None:
        Node()  # a cycle made after start-up: garbage, and the collector still finds it

    later_cycle()
    collected.append(gc.collect())
    assert collected[0] >= 1
