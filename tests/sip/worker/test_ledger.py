"""The pool's bookkeeping: capacity per worker, edge state, calls of a dead worker."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sip.worker.ledger import WORKER_DIED, CallLedger, EdgeState
from sip.worker.messages import CallState, CallStateChanged, IncomingCall


def incoming(call_id: str) -> IncomingCall:
    return IncomingCall(call_id, "sip:a@h", "sip:b@h", "", "127.0.0.1:5060", "x")


def ended(call_id: str) -> CallStateChanged:
    return CallStateChanged(call_id, CallState.DISCONNECTED, 200, "OK")


def test_a_worker_full_with_a_leg_it_placed_goes_inactive_and_back() -> None:
    ledger = CallLedger(2, capacity=2)
    assert ledger.worker_ready(0) == [EdgeState(0, True)]
    assert ledger.worker_ready(1) == [EdgeState(1, True)]
    assert ledger.on_event(0, incoming("a")) == []
    assert ledger.place("c") == 1
    assert ledger.placed(1, "c") == []
    assert ledger.place("d") == 0  # the least loaded
    assert ledger.placed(0, "d") == [EdgeState(0, False)]  # the edge counts "a", not "d"
    assert ledger.free(0) == 0
    assert ledger.on_event(0, ended("a")) == [EdgeState(0, True)]
    assert ledger.holder("a") is None
    assert ledger.holder("d") == 0


def test_a_worker_full_of_calls_the_edge_sent_stays_active() -> None:
    # Kamailio's own count (maxload) keeps calls away from it: no RPC on every fill and free.
    ledger = CallLedger(1, capacity=2)
    ledger.worker_ready(0)
    assert ledger.on_event(0, incoming("a")) == []
    assert ledger.on_event(0, incoming("b")) == []
    assert ledger.free(0) == 0
    assert ledger.edge_active(0)
    assert ledger.on_event(0, ended("a")) == []
    # A placed leg that fills it: the edge would not know.
    assert ledger.place_beside("leg", "b") == 0
    assert ledger.placed(0, "leg") == [EdgeState(0, False)]
    assert ledger.on_event(0, ended("leg")) == [EdgeState(0, True)]


def test_a_dead_worker_ends_its_calls_and_goes_inactive() -> None:
    ledger = CallLedger(1)
    ledger.worker_ready(0)
    ledger.on_event(0, incoming("a"))
    assert ledger.place("b") == 0
    calls, edge = ledger.worker_died(0)
    assert calls == [
        CallStateChanged("a", CallState.DISCONNECTED, 500, WORKER_DIED),
        CallStateChanged("b", CallState.DISCONNECTED, 500, WORKER_DIED),
    ]
    assert edge == [EdgeState(0, False)]
    assert ledger.place("c") is None  # nothing is up
    assert ledger.worker_ready(0) == [EdgeState(0, True)]
    assert ledger.free(0) == 4


def test_placing_prefers_the_least_loaded_worker_and_refuses_duplicates() -> None:
    ledger = CallLedger(3)
    for worker in range(3):
        ledger.worker_ready(worker)
    ledger.on_event(0, incoming("x"))
    assert [ledger.place(f"o{i}") for i in range(3)] == [1, 2, 0]
    assert ledger.place("o1") is None


def test_a_leg_placed_beside_a_call_goes_to_its_worker_or_nowhere() -> None:
    ledger = CallLedger(2, capacity=2)
    ledger.worker_ready(0)
    ledger.worker_ready(1)
    ledger.on_event(1, incoming("a"))
    assert ledger.place_beside("leg", "a") == 1  # not the least loaded worker 0: a's worker
    assert ledger.placed(1, "leg") == [EdgeState(1, False)]  # full, and the edge knows only "a"
    assert ledger.place_beside("leg2", "a") is None  # worker 1 is full; worker 0 is no use
    assert ledger.place_beside("leg3", "gone") is None
    assert ledger.place_beside("leg", "a") is None  # an id in use
    assert ledger.calls(1) == {"a", "leg"}
    assert ledger.free(0) == 2


ops = st.lists(
    st.one_of(
        st.tuples(st.just("ready"), st.integers(0, 2)),
        st.tuples(st.just("died"), st.integers(0, 2)),
        st.tuples(st.just("incoming"), st.integers(0, 2)),
        st.tuples(st.just("place"), st.integers(0, 2)),
        st.tuples(st.just("end"), st.integers(0, 30)),
        st.tuples(st.just("beside"), st.integers(0, 30)),
    ),
    max_size=60,
)


@given(ops)
def test_invariants_hold_over_any_history(history: list[tuple[str, int]]) -> None:
    ledger = CallLedger(3)
    edge = {0: False, 1: False, 2: False}
    live: dict[str, int] = {}
    placed: set[str] = set()  # the live calls the pool placed (the edge did not send them)
    counter = 0
    for op, arg in history:
        changes: list[EdgeState] = []
        if op == "ready":
            changes = ledger.worker_ready(arg)
        elif op == "died":
            calls, changes = ledger.worker_died(arg)
            assert {c.call_id for c in calls} == {c for c, w in live.items() if w == arg}
            live = {c: w for c, w in live.items() if w != arg}
            placed &= set(live)
        elif op == "incoming" and ledger.free(arg) > 0:  # a full endpoint answers 486 itself
            counter += 1
            live[f"c{counter}"] = arg
            changes = ledger.on_event(arg, incoming(f"c{counter}"))
        elif op == "place":
            counter += 1
            worker = ledger.place(f"c{counter}")
            if worker is not None:
                live[f"c{counter}"] = worker
                placed.add(f"c{counter}")
                changes = ledger.placed(worker, f"c{counter}")
        elif op == "beside" and live:
            counter += 1
            other = sorted(live)[arg % len(live)]
            room = ledger.free(live[other]) > 0
            worker = ledger.place_beside(f"c{counter}", other)
            assert worker == (live[other] if room else None)  # beside its call, or nowhere
            if worker is not None:
                live[f"c{counter}"] = worker
                placed.add(f"c{counter}")
                changes = ledger.placed(worker, f"c{counter}")
        elif op == "end" and live:
            call_id = sorted(live)[arg % len(live)]
            placed.discard(call_id)
            changes = ledger.on_event(live.pop(call_id), ended(call_id))
        for change in changes:
            assert edge[change.worker] != change.active  # only real transitions are reported
            edge[change.worker] = change.active
        for worker in range(3):
            held = {c for c, w in live.items() if w == worker}
            assert ledger.calls(worker) == held
            assert 0 <= ledger.free(worker) <= 4
            up = ledger.is_up(worker)
            assert ledger.free(worker) == (4 - len(held) if up else 0)
            # Inactive while down, or full with a leg the edge did not send it.
            assert edge[worker] == (up and (ledger.free(worker) > 0 or not held & placed))
        for call_id, worker in live.items():
            assert ledger.holder(call_id) == worker
