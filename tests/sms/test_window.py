"""sms.window.Window: slots, out-of-order resolution, expiry, draining."""

from __future__ import annotations

import threading
import time

import pytest

from sms.window import Window


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_slots_are_bounded_and_freed_by_resolution_in_any_order() -> None:
    window: Window[str] = Window(3)
    for sequence in (1, 2, 3):
        assert window.acquire(timeout=0)
        window.register(sequence, f"m{sequence}", timeout=10)
    assert window.in_use() == 3
    assert not window.acquire(timeout=0.01)
    entry = window.resolve(2)
    assert entry is not None
    assert entry.item == "m2"
    assert window.resolve(2) is None
    assert window.acquire(timeout=0)
    window.release()
    assert [window.resolve(s).item for s in (3, 1)] == ["m3", "m1"]  # type: ignore[union-attr]
    assert window.in_use() == 0


def test_acquire_blocks_until_a_resp_frees_a_slot() -> None:
    window: Window[int] = Window(1)
    assert window.acquire(timeout=0)
    window.register(1, 1, timeout=10)
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(window.acquire(timeout=2)))
    waiter.start()
    time.sleep(0.05)
    assert not got
    window.resolve(1)
    waiter.join(1)
    assert got == [True]


def test_expire_removes_only_late_entries() -> None:
    clock = FakeClock()
    window: Window[str] = Window(5, clock=clock)
    for sequence, timeout in ((1, 1.0), (2, 5.0), (3, 0.5)):
        window.acquire(timeout=0)
        window.register(sequence, str(sequence), timeout=timeout)
    clock.now = 1.0
    assert sorted(e.sequence for e in window.expire()) == [1, 3]
    assert window.in_use() == 1
    assert window.resolve(1) is None  # a resp after expiry finds nothing


def test_drain_returns_everything_and_empties() -> None:
    window: Window[int] = Window(4)
    for sequence in range(1, 5):
        window.acquire(timeout=0)
        window.register(sequence, sequence, timeout=10)
    assert sorted(e.item for e in window.drain()) == [1, 2, 3, 4]
    assert window.in_use() == 0
    assert window.wait_empty(0)


def test_duplicate_sequence_is_refused() -> None:
    window: Window[int] = Window(2)
    window.acquire(timeout=0)
    window.register(1, 1, timeout=10)
    window.acquire(timeout=0)
    with pytest.raises(KeyError):
        window.register(1, 2, timeout=10)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Window(0)
