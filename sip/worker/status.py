"""The pool's status as a small JSON file, for `trunkline sip status` in another process.

Pure (the control plane's ``trunkline sip status`` reads it). ``run_sip`` rewrites it
(atomically) every second: each worker's pid, port, calls, free slots and restarts, plus when it
was written, so a reader can tell a stale file from a live pool.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

STALE_AFTER = 5.0  # seconds without a rewrite: the sip process is gone


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One worker as the pool reports it: its pid, port, calls and free call slots."""

    index: int
    pid: int | None
    sip_port: int
    up: bool
    calls: int
    free: int
    restarts: int


@dataclass(frozen=True, slots=True)
class PoolStatus:
    written_at: float
    edge: str
    address: str
    workers: tuple[WorkerStatus, ...]

    @property
    def calls(self) -> int:
        return sum(w.calls for w in self.workers)

    @property
    def free(self) -> int:
        return sum(w.free for w in self.workers)

    def is_stale(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) - self.written_at > STALE_AFTER


def dumps(status: PoolStatus) -> str:
    return json.dumps(dataclasses.asdict(status), separators=(",", ":"))


def loads(text: str) -> PoolStatus:
    """The status ``dumps`` wrote; ValueError for anything else."""
    try:
        body = json.loads(text)
        workers = tuple(WorkerStatus(**w) for w in body["workers"])
        return PoolStatus(float(body["written_at"]), str(body["edge"]), str(body["address"]), workers)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a SIP pool status: {exc}") from exc


def write(path: Path, status: PoolStatus) -> None:
    """Replace the file atomically (a reader never sees half of it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(dumps(status))
    temporary.replace(path)


def read(path: Path) -> PoolStatus:
    return loads(path.read_text())
