"""Where a message goes: the enabled SMPP connections and the routes by destination prefix.

A route is a prefix and its connections in priority order; the longest matching prefix wins. A
connection that refused a message for good is not tried again for it (``tried_connections``),
and the next bound one of the route is. The process swaps in a new table on every reload, so a
reader sees one consistent snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from sms.receipts import MessageIdFormat, canonical_message_id


@dataclass(frozen=True)
class ConnectionView:
    """What the worker needs of an ``smpp_connections`` row once its bind is up."""

    id: str
    name: str
    source_ton: int
    source_npi: int
    dest_ton: int
    dest_npi: int
    default_data_coding: str
    resp_id_format: MessageIdFormat = MessageIdFormat.AS_IS
    receipt_id_format: MessageIdFormat = MessageIdFormat.AS_IS


class Route(NamedTuple):
    prefix: str
    connection_ids: list[str]  # in priority order


class RouteOutcome(StrEnum):
    """What looking for a connection for a message came to."""

    CHOSEN = "chosen"
    NO_ROUTE = "no_route"  # no route's prefix matches the destination
    ALL_REFUSED = "all_refused"  # every connection of the route refused the message already
    NONE_BOUND = "none_bound"  # connections are left, but none of them is bound now


@dataclass(frozen=True, slots=True)
class RouteChoice:
    outcome: RouteOutcome
    connection_id: str | None = None  # when CHOSEN


def tried_list(tried_connections: str) -> list[str]:
    """The connections of a ``tried_connections`` comma list."""
    return [c for c in tried_connections.split(",") if c]


@dataclass(frozen=True)
class RoutingTable:
    connections: Mapping[str, ConnectionView] = field(default_factory=dict)
    routes: Sequence[Route] = ()  # longest prefix first

    @classmethod
    def build(cls, connections: Iterable[ConnectionView], routes: Iterable[tuple[str, str]]) -> RoutingTable:
        """From the enabled connections and the (prefix, connection id) routes in priority order;
        routes to connections not given are left out."""
        by_id = {connection.id: connection for connection in connections}
        by_prefix: dict[str, list[str]] = {}
        for prefix, connection_id in routes:
            if connection_id in by_id:
                by_prefix.setdefault(prefix, []).append(connection_id)
        ordered = sorted(by_prefix.items(), key=lambda item: -len(item[0]))
        return cls(by_id, [Route(prefix, ids) for prefix, ids in ordered])

    def candidates(self, destination: str) -> list[str]:
        """The connections of the route for ``destination``, in priority order."""
        for route in self.routes:
            if destination.startswith(route.prefix):
                return route.connection_ids
        return []

    def choose(
        self, destination: str, tried_connections: str, is_bound: Callable[[str], bool]
    ) -> RouteChoice:
        """The first bound connection of the route that has not refused the message yet."""
        candidates = self.candidates(destination)
        if not candidates:
            return RouteChoice(RouteOutcome.NO_ROUTE)
        tried = set(tried_list(tried_connections))
        remaining = [c for c in candidates if c not in tried]
        if not remaining:
            return RouteChoice(RouteOutcome.ALL_REFUSED)
        for connection_id in remaining:
            if is_bound(connection_id):
                return RouteChoice(RouteOutcome.CHOSEN, connection_id)
        return RouteChoice(RouteOutcome.NONE_BOUND)

    def has_untried(self, destination: str, tried: Sequence[str]) -> bool:
        """Whether the route has a connection not in ``tried`` (to fail over to)."""
        return any(c not in tried for c in self.candidates(destination))

    def canonical(self, connection_id: str, message_id: str, *, receipt: bool) -> str:
        """The SMSC message id in the form it is stored and matched in, whichever notation the
        connection's SMSC writes it in (its resps and its receipts may differ)."""
        view = self.connections.get(connection_id)
        if view is None:
            return canonical_message_id(message_id)
        return canonical_message_id(message_id, view.receipt_id_format if receipt else view.resp_id_format)
