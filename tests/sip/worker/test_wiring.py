"""The conference wiring as a pure function of streams, bridges, mutes, holds and plays."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sip.worker.wiring import CLOCK_NODE, call_node, connections, diff, pair, player_node, touching

CALLS = ["a", "b", "c", "d"]
subsets = st.frozensets(st.sampled_from(CALLS))
bridge_sets = st.frozensets(
    st.tuples(st.sampled_from(CALLS), st.sampled_from(CALLS))
    .filter(lambda p: p[0] != p[1])
    .map(lambda p: pair(*p))
)


def hears(edges: frozenset[tuple[object, object]], sink: str, source: str) -> bool:
    return (call_node(source), call_node(sink)) in edges


def test_two_bridged_calls_hear_each_other_and_no_clock() -> None:
    edges = connections({"a", "b"}, [pair("a", "b")], set(), set(), set())
    assert edges == {
        (call_node("a"), call_node("b")),
        (call_node("b"), call_node("a")),
        (call_node("a"), CLOCK_NODE),
        (call_node("b"), CLOCK_NODE),
    }


def test_mute_cuts_one_way_and_the_muted_call_gets_the_clock_only_if_unheard() -> None:
    edges = connections({"a", "b"}, [pair("a", "b")], {"a"}, set(), set())
    assert not hears(edges, "b", "a")
    assert hears(edges, "a", "b")
    assert (CLOCK_NODE, call_node("b")) in edges  # b hears nothing else: silence from the clock


def test_hold_cuts_both_ways_but_the_play_still_reaches_the_held_call() -> None:
    edges = connections({"a", "b"}, [pair("a", "b")], set(), {"a"}, {"a"})
    assert not hears(edges, "b", "a")
    assert not hears(edges, "a", "b")
    assert (player_node("a"), call_node("a")) in edges
    assert (CLOCK_NODE, call_node("a")) not in edges


def test_a_bridge_waits_for_both_streams() -> None:
    edges = connections({"a"}, [pair("a", "b")], set(), set(), set())
    assert edges == {(call_node("a"), CLOCK_NODE), (CLOCK_NODE, call_node("a"))}


@given(subsets, bridge_sets, subsets, subsets, subsets)
def test_rules_hold_for_any_state(
    active: frozenset[str],
    bridges: frozenset[frozenset[str]],
    muted: frozenset[str],
    held: frozenset[str],
    playing: frozenset[str],
) -> None:
    edges = connections(active, bridges, muted, held, playing)
    for source, sink in edges:  # only active calls take part
        for node in (source, sink):
            assert node == CLOCK_NODE or node.call_id in active
    for call_id in active:
        assert (call_node(call_id), CLOCK_NODE) in edges  # always consumed
        sources = {s for s, k in edges if k == call_node(call_id)}
        assert sources, call_id  # always fed: a play, a bridged call or the clock's silence
        assert (CLOCK_NODE in sources) == (sources == {CLOCK_NODE})  # the clock only when alone
        assert ((player_node(call_id), call_node(call_id)) in edges) == (call_id in playing)
    for a in CALLS:
        for b in CALLS:
            expected = (
                a != b and pair(a, b) in bridges and {a, b} <= active and b not in muted and not {a, b} & held
            )
            assert hears(edges, a, b) == expected, (a, b)


@given(subsets, bridge_sets, subsets, subsets, subsets, bridge_sets, subsets)
def test_diff_turns_any_wiring_into_any_other(
    active: frozenset[str],
    bridges: frozenset[frozenset[str]],
    muted: frozenset[str],
    held: frozenset[str],
    playing: frozenset[str],
    other_bridges: frozenset[frozenset[str]],
    other_muted: frozenset[str],
) -> None:
    before = connections(active, bridges, muted, held, playing)
    after = connections(active, other_bridges, other_muted, held, playing)
    remove, add = diff(before, after)
    assert (set(before) - set(remove)) | set(add) == after
    assert not set(remove) & set(add)


def test_touching_names_the_edges_of_a_call_and_its_player() -> None:
    edges = connections({"a", "b"}, [pair("a", "b")], set(), set(), {"a"})
    gone = touching(edges, "a")
    assert all(call_node("a") in e or player_node("a") in e for e in gone)
    assert edges - gone == {(call_node("b"), CLOCK_NODE)}
