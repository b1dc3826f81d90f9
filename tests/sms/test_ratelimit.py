"""sms.ratelimit.TokenBucket with a fake clock, and once against the real one."""

from __future__ import annotations

import threading
import time

import pytest

from sms.ratelimit import TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_steady_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)  # callers queue up behind each other
    clock.now += 0.3
    assert bucket.reserve() == pytest.approx(0.0, abs=1e-9)


def test_refund_returns_a_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(1.0)
    bucket.refund()
    assert bucket.reserve() == pytest.approx(1.0)


def test_zero_rate_is_unlimited() -> None:
    bucket = TokenBucket(rate=0)
    assert all(bucket.reserve() == 0.0 for _ in range(10_000))


def test_idle_time_never_builds_more_than_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, burst=5, clock=clock)
    clock.now += 3600
    assert sum(1 for _ in range(20) if bucket.reserve() == 0.0) == 5


def test_default_burst_is_a_tenth_of_a_second() -> None:
    assert TokenBucket(rate=500).burst == 50
    assert TokenBucket(rate=3).burst == 1


def test_concurrent_callers_share_the_rate() -> None:
    bucket = TokenBucket(rate=200, burst=1)
    done: list[float] = []
    start = time.monotonic()

    def worker() -> None:
        for _ in range(25):
            time.sleep(bucket.reserve())
            done.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(done) - start
    assert len(done) == 100
    assert 0.45 <= elapsed <= 0.8  # 99 intervals of 5 ms after the first token
