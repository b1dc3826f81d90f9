"""Workers' states at the edge, written from a thread of their own.

A call that takes or frees a worker's last slot changes whether the edge (Kamailio's
dispatcher) may send that worker new calls. The pool's reader thread used to make that
JSON-RPC call itself, and every worker's events waited behind it: in a 200-call IVR run, 553
changes held the reader 3.5 s in all, up to 40 ms each. The pool now only records the
latest state of each worker here and goes on; this thread writes them. States are coalesced:
a worker that fills and frees again before the thread gets to it costs at most one write, and
the edge never gets a stale state after a newer one. A write that fails is tried again, unless
a newer state replaced it meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from prometheus_client import Counter

from gateway.core.metrics import owned_by
from sip.worker.ledger import EdgeState

log = logging.getLogger("sip.edge")

EDGE_WRITES = Counter(
    "trunkline_sip_edge_writes_total",
    "Workers' states written to the edge (Kamailio's dispatcher), by state and outcome. With "
    "only calls the edge sent, a worker is written when it starts or dies, not as it fills.",
    ["state", "outcome"],
)
owned_by("sip", EDGE_WRITES)

RETRY_SECONDS = 1.0  # after a failed write (the edge restarting, an RPC timeout)


class EdgeWriter:
    def __init__(self, write: Callable[[EdgeState], None], retry_seconds: float = RETRY_SECONDS) -> None:
        self._write = write
        self._retry_seconds = retry_seconds
        self._pending: dict[int, bool] = {}  # worker -> the state to write
        self._written: dict[int, bool] = {}  # worker -> the last state the edge accepted
        self._changed = threading.Condition()
        self._stopping = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="sip-edge-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, changes: Iterable[EdgeState]) -> None:
        """Record the workers' new states; never waits for the edge."""
        with self._changed:
            for change in changes:
                self._pending[change.worker] = change.active
            self._changed.notify()

    def settled(self, timeout: float) -> bool:
        """Whether every recorded state was written within ``timeout`` seconds (tests, stop)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 2.0) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._stopping or bool(self._pending))
                if self._stopping:
                    return
                batch, self._pending = self._pending, {}
                self._busy = True
            failed = self._write_all(batch)
            if failed:
                with self._changed:
                    for worker, active in failed.items():
                        self._pending.setdefault(worker, active)  # unless a newer state came
                    if self._changed.wait_for(lambda: self._stopping, self._retry_seconds):
                        return

    def _write_all(self, batch: dict[int, bool]) -> dict[int, bool]:
        """Write each state the edge does not have yet; the ones that failed."""
        failed: dict[int, bool] = {}
        for worker, active in sorted(batch.items()):
            if self._written.get(worker) is active:
                continue  # it flipped and flipped back before its write
            state = "active" if active else "inactive"
            try:
                self._write(EdgeState(worker, active))
            except Exception:  # the edge being down must not stop the pool
                log.exception("could not set worker %d %s at the edge", worker, active)
                EDGE_WRITES.labels(state, "failed").inc()
                failed[worker] = active
            else:
                EDGE_WRITES.labels(state, "written").inc()
                self._written[worker] = active
        return failed
