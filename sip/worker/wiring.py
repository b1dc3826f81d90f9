"""Which conference-bridge connections a worker's calls need: a pure function of the media state.

The worker's audio graph follows from four facts: which calls have an active audio stream,
which pairs of calls are bridged, which calls are muted or held, and which calls have a play
running. ``connections`` turns them into the set of (source, sink) edges; the owner thread
applies the difference with what is connected now (``diff``). No I/O, no pjsua2.

Rules (the media contract of ``sip.worker.messages``):
- every call's audio goes to the clock (the null sound device), so it is always consumed;
- a call hears its play if one runs, its bridged calls, or otherwise the clock's silence;
- bridged calls hear each other, except what a muted call says (it reaches no bridged call)
  and anything to or from a held call (it still hears its play).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

CLOCK = "clock"  # the null sound device's port (conference slot 0)


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """A port of the conference bridge: a call's audio stream, a call's player, or the clock."""

    kind: str  # "call", "player" or "clock"
    call_id: str = ""


CLOCK_NODE = Node(CLOCK)
Edge = tuple[Node, Node]  # (source, sink): sink hears source


def call_node(call_id: str) -> Node:
    return Node("call", call_id)


def player_node(call_id: str) -> Node:
    return Node("player", call_id)


def pair(a: str, b: str) -> frozenset[str]:
    """A bridge between two calls, unordered."""
    return frozenset((a, b))


def connections(
    active: Set[str],
    bridges: Iterable[frozenset[str]],
    muted: Set[str],
    held: Set[str],
    playing: Set[str],
) -> frozenset[Edge]:
    """The edges the bridge must have; calls without an active stream take no part."""
    edges: set[Edge] = set()
    heard: set[str] = set()  # calls that have a source other than the clock
    for bridge in bridges:
        if len(bridge) != 2 or not bridge <= active:
            continue
        a, b = sorted(bridge)
        if a in held or b in held:
            continue
        for source, sink in ((a, b), (b, a)):
            if source not in muted:
                edges.add((call_node(source), call_node(sink)))
                heard.add(sink)
    for call_id in active:
        edges.add((call_node(call_id), CLOCK_NODE))
        if call_id in playing:
            edges.add((player_node(call_id), call_node(call_id)))
            heard.add(call_id)
        if call_id not in heard:
            edges.add((CLOCK_NODE, call_node(call_id)))
    return frozenset(edges)


def diff(current: Set[Edge], wanted: Set[Edge]) -> tuple[list[Edge], list[Edge]]:
    """(edges to disconnect, edges to connect), in a stable order; disconnections first."""
    return sorted(current - wanted), sorted(wanted - current)


def touching(edges: Set[Edge], call_id: str) -> frozenset[Edge]:
    """The edges that involve the call's stream or its player (gone with the call)."""
    nodes = {call_node(call_id), player_node(call_id)}
    return frozenset(edge for edge in edges if edge[0] in nodes or edge[1] in nodes)
