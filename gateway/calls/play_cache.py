"""The on-disk cache of prepared prompts: ``<key>.wav`` files in one directory.

Writes are atomic (a temporary file in the same directory, fsynced, then renamed), so a reader
never sees half a file. Preparing one key is serialised by an ``flock`` on ``<key>.lock``,
across threads and processes: the second of two concurrent prepares waits and then finds the
entry. A hit refreshes the entry's modification time; when the directory holds more than its
bound, the entries least recently used go first, except those used in the last ``grace``
seconds (a Play may be about to open them), so the bound can be passed for that long.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ENTRY_SUFFIX = ".wav"
LOCK_SUFFIX = ".lock"
EVICTION_LOCK = ".eviction.lock"


class PlayCache:
    def __init__(self, directory: Path, max_bytes: int, grace_seconds: float = 60.0) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.grace_seconds = grace_seconds
        directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}{ENTRY_SUFFIX}"

    def get(self, key: str) -> Path | None:
        """The entry of ``key``, marked as just used; None when there is none."""
        path = self.path(key)
        try:
            os.utime(path)
        except FileNotFoundError:
            return None
        return path

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        fd = os.open(self.directory / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def get_or_make(self, key: str, make: Callable[[Path], None]) -> tuple[Path, bool]:
        """(the entry of ``key``, whether it was already there). ``make(path)`` writes the file
        at ``path`` (a temporary name) when it is missing; what it raises is raised here and
        nothing is kept."""
        hit = self.get(key)
        if hit is not None:
            return hit, True
        with self._locked(key + LOCK_SUFFIX):
            hit = self.get(key)  # made by whoever held the lock before us
            if hit is not None:
                return hit, True
            final = self.path(key)
            temporary = self.directory / f".{key}.{os.getpid()}.{time.monotonic_ns()}.tmp"
            try:
                make(temporary)
                os.replace(temporary, final)
            finally:
                temporary.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (self.directory / (key + LOCK_SUFFIX)).unlink()
        self.evict()
        return final, False

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, size, path) of every entry, least recently used first."""
        found: list[tuple[float, int, Path]] = []
        for path in self.directory.glob(f"*{ENTRY_SUFFIX}"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found.append((stat.st_mtime, stat.st_size, path))
        found.sort()
        return found

    def evict(self) -> int:
        """Remove least recently used entries until the cache fits its bound; how many went."""
        with self._locked(EVICTION_LOCK):
            entries = self.entries()
            total = sum(size for _, size, _ in entries)
            removed = 0
            recent = time.time() - self.grace_seconds
            for used, size, path in entries:
                if total <= self.max_bytes:
                    break
                if used > recent:
                    break  # the rest are newer still
                path.unlink(missing_ok=True)
                total -= size
                removed += 1
            return removed
