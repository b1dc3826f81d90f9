"""sip/control/ring_timers.py: the database is asked only when an unanswered offer's deadline passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sip.control.ring_timers import RingTimers

T0 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_first_look_asks_for_a_predecessors_calls_then_only_due_unheard_offers() -> None:
    timers = RingTimers()
    assert timers.look(at(0))
    assert not timers.look(at(1))
    timers.offered("answered", at(30))
    timers.offered("cancelled", at(31))
    timers.offered("unheard", at(32))
    timers.heard("answered")
    timers.heard("cancelled")
    assert not timers.look(at(29.9))
    assert not timers.look(at(31.5))  # the two deadlines passed, but both calls were heard of
    assert timers.look(at(32))  # nothing came for this one: the database decides
    assert not timers.look(at(40))


def test_a_failed_look_is_made_again() -> None:
    timers = RingTimers()
    timers.look(at(0))
    timers.offered("c1", at(30))
    assert timers.look(at(30))
    timers.again()  # the database was away
    assert timers.look(at(30.25))
    assert not timers.look(at(30.5))
