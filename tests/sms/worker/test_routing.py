"""Routing (sms/worker/routing.py): the longest prefix, failover past refusing connections, what
is chosen when none is bound, and SMSC ids in each connection's notation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sms.receipts import MessageIdFormat
from sms.worker.routing import ConnectionView, RouteChoice, RouteOutcome, RoutingTable


def view(connection_id: str, **formats: MessageIdFormat) -> ConnectionView:
    return ConnectionView(connection_id, connection_id, 1, 1, 1, 1, "auto", **formats)


TABLE = RoutingTable.build(
    [view("a"), view("b"), view("c", resp_id_format=MessageIdFormat.HEX)],
    [("+1", "a"), ("+1", "b"), ("+44", "c"), ("+4420", "b"), ("+33", "gone")],
)


def bound(*connection_ids: str) -> set[str]:
    return set(connection_ids)


def test_the_longest_prefix_wins() -> None:
    assert TABLE.candidates("+442071234567") == ["b"]
    assert TABLE.candidates("+447700900123") == ["c"]
    assert TABLE.candidates("+14255550123") == ["a", "b"]
    assert TABLE.candidates("+33612345678") == []  # its connection is not enabled


def test_the_first_bound_connection_not_refusing_is_chosen() -> None:
    everything = bound("a", "b", "c").__contains__
    assert TABLE.choose("+14255550123", "", everything) == RouteChoice(RouteOutcome.CHOSEN, "a")
    assert TABLE.choose("+14255550123", "a", everything) == RouteChoice(RouteOutcome.CHOSEN, "b")
    assert TABLE.choose("+14255550123", "", bound("b").__contains__) == RouteChoice(RouteOutcome.CHOSEN, "b")


def test_why_nothing_is_chosen() -> None:
    everything = bound("a", "b", "c").__contains__
    assert TABLE.choose("+33612345678", "", everything).outcome is RouteOutcome.NO_ROUTE
    assert TABLE.choose("+14255550123", "a,b", everything).outcome is RouteOutcome.ALL_REFUSED
    assert TABLE.choose("+14255550123", "a", bound("a").__contains__).outcome is RouteOutcome.NONE_BOUND


def test_failover_needs_a_connection_not_tried() -> None:
    assert TABLE.has_untried("+14255550123", ["a"])
    assert not TABLE.has_untried("+14255550123", ["a", "b"])
    assert not TABLE.has_untried("+447700900123", ["c"])


def test_smsc_ids_in_each_connection_s_notation() -> None:
    assert TABLE.canonical("c", "0000000C", receipt=False) == "12"
    assert TABLE.canonical("c", "0000000C", receipt=True) == "0000000c"  # receipts as-is there
    assert TABLE.canonical("unknown", " AbC ", receipt=True) == "abc"


@given(
    destination=st.text(alphabet="+0123456789", max_size=14),
    tried=st.lists(st.sampled_from("abc"), max_size=3),
    up=st.sets(st.sampled_from("abc")),
)
def test_a_choice_is_a_bound_untried_connection_of_the_route(
    destination: str, tried: list[str], up: set[str]
) -> None:
    choice = TABLE.choose(destination, ",".join(tried), up.__contains__)
    candidates = TABLE.candidates(destination)
    if choice.outcome is RouteOutcome.CHOSEN:
        assert choice.connection_id in candidates
        assert choice.connection_id in up
        assert choice.connection_id not in tried
    else:
        assert choice.connection_id is None
        assert not [c for c in candidates if c in up and c not in tried]
