"""The prepared-prompt cache: atomic entries, one maker per key, least recently used out first."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.calls.play_cache import PlayCache


def write(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.write_bytes(b"x" * size)

    return make


def age(cache: PlayCache, key: str, seconds_ago: float) -> None:
    when = time.time() - seconds_ago
    os.utime(cache.path(key), (when, when))


def test_a_made_entry_is_found_and_a_failed_one_leaves_nothing(tmp_path: Path) -> None:
    cache = PlayCache(tmp_path, max_bytes=10_000, grace_seconds=0)
    path, hit = cache.get_or_make("a", write(100))
    assert (path.read_bytes(), hit) == (b"x" * 100, False)
    assert cache.get_or_make("a", write(5)) == (path, True)

    def broken(partial: Path) -> None:
        partial.write_bytes(b"half")
        raise RuntimeError("download died")

    with pytest.raises(RuntimeError):
        cache.get_or_make("b", broken)
    assert cache.get("b") is None
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["a.wav"]


def test_least_recently_used_entries_go_first(tmp_path: Path) -> None:
    cache = PlayCache(tmp_path, max_bytes=3000, grace_seconds=0)
    for key in ("old", "used", "newer"):
        cache.get_or_make(key, write(1000))
    age(cache, "old", 300)
    age(cache, "used", 200)
    age(cache, "newer", 100)
    assert cache.get("used") is not None  # a hit makes it the most recent
    cache.get_or_make("newest", write(1000))
    assert cache.get("old") is None
    assert cache.get("newer") is not None
    assert cache.get("used") is not None
    assert sum(size for _, size, _ in cache.entries()) <= 3000


def test_entries_in_use_are_kept_past_the_bound(tmp_path: Path) -> None:
    cache = PlayCache(tmp_path, max_bytes=1500, grace_seconds=60)
    cache.get_or_make("a", write(1000))
    cache.get_or_make("b", write(1000))
    assert cache.get("a") is not None  # a Play may be about to open it
    age(cache, "a", 120)
    assert cache.evict() == 1
    assert cache.get("a") is None


def test_concurrent_makers_of_one_key_make_it_once(tmp_path: Path) -> None:
    cache = PlayCache(tmp_path, max_bytes=10_000_000, grace_seconds=0)
    made: list[int] = []
    results: list[tuple[Path, bool]] = []

    def make(path: Path) -> None:
        made.append(1)
        time.sleep(0.2)
        path.write_bytes(b"y" * 10)

    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_make("k", make))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(made) == 1
    assert sorted(hit for _, hit in results) == [False, True, True, True]
    assert len({path for path, _ in results}) == 1
