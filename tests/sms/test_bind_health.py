"""sms.bind_health: the operator's words for a bind, since when, and the last minute's count."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sms.bind_health import BindHealth, Health, RecentCount
from sms.bind_types import BindState


def test_a_bind_that_keeps_failing_stays_failing_since_its_first_failure() -> None:
    health = BindHealth(now=0.0)
    health.state_changed(BindState.CONNECTING, 1.0)
    assert (health.health, health.since) == (Health.CONNECTING, 0.0)
    health.failed("ESME_RBINDFAIL", 2.0)
    for step in range(3, 10):
        health.state_changed(BindState.BACKOFF, float(step))
        health.state_changed(BindState.CONNECTING, step + 0.5)
    assert (health.health, health.since, health.last_error) == (Health.FAILING, 2.0, "ESME_RBINDFAIL")
    health.state_changed(BindState.BOUND, 12.0)
    assert (health.health, health.since) == (Health.BOUND, 12.0)
    health.state_changed(BindState.CONNECTING, 13.0)  # a fresh attempt after an orderly unbind
    assert health.health is Health.CONNECTING
    health.state_changed(BindState.STOPPED, 14.0)
    assert health.health is Health.STOPPED


@given(st.lists(st.tuples(st.floats(0, 500), st.integers(1, 5)), max_size=50), st.floats(0, 600))
def test_recent_count_is_what_happened_in_the_last_minute(
    events: list[tuple[float, int]], extra: float
) -> None:
    events.sort()
    counter = RecentCount()
    for moment, amount in events:
        counter.add(moment, amount)
    now = (events[-1][0] if events else 0.0) + extra
    expected = sum(amount for moment, amount in events if int(moment) > int(now) - 60)
    assert counter.total(now) == expected
