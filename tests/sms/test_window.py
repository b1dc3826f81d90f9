"""sms.window.Window: slots, out-of-order resolution, expiry, draining; sans-IO, property-tested."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.window import Window, WindowError


def test_slots_are_bounded_and_freed_by_resolution_in_any_order() -> None:
    window: Window[str, None] = Window(3)
    for sequence in (1, 2, 3):
        assert window.reserve()
        window.register(sequence, f"m{sequence}", now=0.0, timeout=10)
    assert window.in_use() == 3
    assert not window.reserve()
    entry = window.resolve(2)
    assert entry is not None
    assert entry.item == "m2"
    assert window.resolve(2) is None
    assert window.reserve()
    window.release()
    assert [window.resolve(s).item for s in (3, 1)] == ["m3", "m1"]  # type: ignore[union-attr]
    assert window.in_use() == 0


def test_a_resp_frees_the_slot_a_full_window_refused() -> None:
    window: Window[int, None] = Window(1)
    assert window.reserve()
    window.register(1, 1, now=0.0, timeout=10)
    assert not window.reserve()  # the runtime waits (sms.bind_sender) until ...
    window.resolve(1)
    assert window.reserve()  # ... a resp frees a slot


def test_expire_removes_only_late_entries() -> None:
    window: Window[str, None] = Window(5)
    for sequence, timeout in ((1, 1.0), (2, 5.0), (3, 0.5)):
        window.reserve()
        window.register(sequence, str(sequence), now=0.0, timeout=timeout)
    assert sorted(e.sequence for e in window.expire(now=1.0)) == [1, 3]
    assert window.in_use() == 1
    assert window.resolve(1) is None  # a resp after expiry finds nothing


def test_drain_returns_everything_and_empties() -> None:
    window: Window[int, None] = Window(4)
    for sequence in range(1, 5):
        window.reserve()
        window.register(sequence, sequence, now=0.0, timeout=10)
    assert sorted(e.item for e in window.drain()) == [1, 2, 3, 4]
    assert window.in_use() == 0
    assert window.idle()


def test_duplicate_sequence_is_refused() -> None:
    window: Window[int, None] = Window(2)
    window.reserve()
    window.register(1, 1, now=0.0, timeout=10)
    window.reserve()
    with pytest.raises(KeyError):
        window.register(1, 2, now=0.0, timeout=10)


def test_register_and_release_need_a_reserved_slot() -> None:
    window: Window[int, None] = Window(2)
    with pytest.raises(WindowError):
        window.register(1, 1, now=0.0, timeout=10)
    with pytest.raises(WindowError):
        window.release()
    assert window.idle()


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Window(0)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.just(0)),
        st.tuples(st.just("release"), st.just(0)),
        st.tuples(st.just("register"), st.integers(1, 30)),
        st.tuples(st.just("resolve"), st.integers(1, 30)),
        st.tuples(st.just("expire"), st.integers(0, 20)),
        st.tuples(st.just("drain"), st.just(0)),
    ),
    max_size=120,
)


@given(size=st.integers(1, 8), ops=operations)
def test_never_more_than_size_in_use_and_every_entry_leaves_once(
    size: int, ops: list[tuple[str, int]]
) -> None:
    window: Window[int, None] = Window(size)
    reserved = 0
    outstanding: dict[int, float] = {}  # sequence -> deadline
    registered: list[int] = []
    left: list[int] = []
    now = 0.0
    for op, value in ops:
        if op == "reserve":
            took = window.reserve()
            assert took == (reserved + len(outstanding) < size)
            reserved += took
        elif op == "release" and reserved:
            window.release()
            reserved -= 1
        elif op == "register" and reserved and value not in outstanding:
            entry = window.register(value, value, now=now, timeout=5.0)
            assert entry.deadline == now + 5.0
            reserved -= 1
            outstanding[value] = entry.deadline
            registered.append(value)
        elif op == "resolve":
            resolved = window.resolve(value)
            assert (resolved is not None) == (value in outstanding)
            if resolved is not None:
                left.append(resolved.sequence)
                del outstanding[value]
        elif op == "expire":
            now += value / 4
            expired = sorted(e.sequence for e in window.expire(now))
            assert expired == sorted(s for s, deadline in outstanding.items() if deadline <= now)
            left += expired
            for sequence in expired:
                del outstanding[sequence]
        elif op == "drain":
            drained = sorted(e.sequence for e in window.drain())
            assert drained == sorted(outstanding)
            left += drained
            outstanding.clear()
        assert window.in_use() == reserved + len(outstanding) <= size
        assert window.idle() == (window.in_use() == 0)
        assert all(sequence in window for sequence in outstanding)
    left += [e.sequence for e in window.drain()]
    assert sorted(left) == sorted(registered)  # every entry left the window exactly once
