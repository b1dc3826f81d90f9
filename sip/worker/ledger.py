"""Which worker holds which call, and each worker's free capacity: the pool's pure bookkeeping.

The supervisor feeds it what happens (a worker ready or dead, a worker event, a call placed)
and gets back what follows: the edge state a worker should have and, for a dead worker, the
calls it held reported as ended. No I/O.

A worker is inactive at the edge while it is down, or full with a leg it placed itself among its
calls (an outbound call, a transfer, a participant): Kamailio counts the calls it dispatched
(algorithm 10, ``maxload`` the worker's capacity) and never sends a worker more than that, but
it does not see legs that did not come through it. A worker full of calls the edge dispatched is
left active: the edge's own count already keeps calls away, and marking it would only add an
RPC per fill and free whose lag, under load, kept workers that had freed a slot inactive (calls
refused with 503 while slots were free).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sip.worker.config import MAX_CALLS_PER_WORKER
from sip.worker.messages import CallState, CallStateChanged, Event, IncomingCall

WORKER_DIED = "worker died"
WORKER_DIED_STATUS = 500


@dataclass(frozen=True, slots=True)
class EdgeState:
    """The edge (Kamailio dispatcher) should send new calls to ``worker`` or not."""

    worker: int
    active: bool


@dataclass(slots=True)
class _Worker:
    up: bool = False
    calls: set[str] = field(default_factory=set)
    placed: set[str] = field(default_factory=set)  # the calls the pool placed, not the edge
    edge_active: bool = False


class CallLedger:
    """Calls per worker for ``workers`` workers of ``capacity`` calls each."""

    def __init__(self, workers: int, capacity: int = MAX_CALLS_PER_WORKER) -> None:
        self.capacity = capacity
        self._workers = [_Worker() for _ in range(workers)]
        self._holder: dict[str, int] = {}

    def holder(self, call_id: str) -> int | None:
        """The worker holding the call, if any."""
        return self._holder.get(call_id)

    def calls(self, worker: int) -> frozenset[str]:
        return frozenset(self._workers[worker].calls)

    def free(self, worker: int) -> int:
        """Free call slots of a worker (0 while it is down)."""
        state = self._workers[worker]
        return self.capacity - len(state.calls) if state.up else 0

    def is_up(self, worker: int) -> bool:
        return self._workers[worker].up

    def worker_ready(self, worker: int) -> list[EdgeState]:
        self._workers[worker].up = True
        return self._edge(worker)

    def worker_died(self, worker: int) -> tuple[list[CallStateChanged], list[EdgeState]]:
        """The calls the worker held, now ended, and its edge state (inactive)."""
        state = self._workers[worker]
        state.up = False
        ended = [
            CallStateChanged(call_id, CallState.DISCONNECTED, WORKER_DIED_STATUS, WORKER_DIED)
            for call_id in sorted(state.calls)
        ]
        for call_id in state.calls:
            self._holder.pop(call_id, None)
        state.calls.clear()
        state.placed.clear()
        return ended, self._edge(worker)

    def place(self, call_id: str) -> int | None:
        """Reserve a slot for an outbound call on the least loaded worker (None if all full)."""
        if call_id in self._holder:
            return None
        candidates = [i for i in range(len(self._workers)) if self.free(i) > 0]
        if not candidates:
            return None
        worker = max(candidates, key=lambda i: (self.free(i), -i))
        self._add(worker, call_id, placed=True)
        return worker

    def place_beside(self, call_id: str, beside: str) -> int | None:
        """Reserve a slot for a leg on the worker holding ``beside`` (its bridge is per endpoint).

        None when ``beside`` is held by no worker, that worker is full, or the id is taken.
        """
        worker = self._holder.get(beside)
        if call_id in self._holder or worker is None or self.free(worker) <= 0:
            return None
        self._add(worker, call_id, placed=True)
        return worker

    def placed(self, worker: int, call_id: str) -> list[EdgeState]:
        """Edge changes after ``place`` (kept separate so ``place`` stays a query + reserve)."""
        return self._edge(worker)

    def on_event(self, worker: int, event: Event) -> list[EdgeState]:
        """Account for a worker's event; returns the edge changes it causes."""
        if isinstance(event, IncomingCall):
            self._add(worker, event.call_id, placed=False)
        elif isinstance(event, CallStateChanged) and event.state is CallState.DISCONNECTED:
            if self._holder.get(event.call_id) == worker:
                del self._holder[event.call_id]
                self._workers[worker].calls.discard(event.call_id)
                self._workers[worker].placed.discard(event.call_id)
        else:
            return []
        return self._edge(worker)

    def _add(self, worker: int, call_id: str, *, placed: bool) -> None:
        self._holder[call_id] = worker
        self._workers[worker].calls.add(call_id)
        if placed:
            self._workers[worker].placed.add(call_id)

    def edge_active(self, worker: int) -> bool:
        """Whether the edge should send the worker new calls (see the module's docstring)."""
        state = self._workers[worker]
        return state.up and (self.free(worker) > 0 or not state.placed)

    def _edge(self, worker: int) -> list[EdgeState]:
        state = self._workers[worker]
        active = self.edge_active(worker)
        if active == state.edge_active:
            return []
        state.edge_active = active
        return [EdgeState(worker, active)]
