"""Where a call goes and where one may come from, pure (sans-IO; property-tested).

Outbound: the tenant's own routes first, as ACS applies them (in their order, the first whose
``numberPattern`` matches the whole number decides; its enabled trunks in their order; a matching
route with no enabled trunk hands the call to the operator), then the operator's route of the
longest E.164 prefix with enabled trunks, its trunks in priority order. The SIP side tries the
destinations in the plan's order and fails over to the next on a 5xx or a timeout.

Inbound: an INVITE is taken only from an address inside a network of an enabled trunk (its
``--allow`` CIDRs, or the trunk's host when that is an IP address and no CIDR is given); the most
specific network names the trunk. Anything else is refused (the SIP side answers 403).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gateway.calls.sip_configuration import SipConfiguration, route_matches

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# SipRouting's trunks are session border controllers reached over SIP TLS on sipSignalingPort.
TENANT_TRUNK_TRANSPORT = "tls"


class Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class RouteSource(StrEnum):
    """Whose configuration a destination comes from."""

    TENANT = "tenant"
    OPERATOR = "operator"


@dataclass(frozen=True)
class OperatorTrunk:
    """What routing needs of one of the operator's trunks."""

    name: str
    host: str
    port: int
    transport: Transport
    networks: tuple[IPNetwork, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class OperatorRoute:
    """A destination prefix ("+" alone: every number) and its trunks' names in failover order."""

    prefix: str
    trunks: tuple[str, ...]


@dataclass(frozen=True)
class Destination:
    """One place to send the INVITE: ``trunk`` is the operator trunk's name or the tenant trunk's
    FQDN, ``route`` the tenant route's name or the operator route's prefix."""

    source: RouteSource
    route: str
    trunk: str
    host: str
    port: int
    transport: Transport


@dataclass(frozen=True)
class OutboundPlan:
    """The destinations to try for ``number``, in order; none: the number has no route."""

    number: str
    destinations: tuple[Destination, ...]

    @property
    def routable(self) -> bool:
        return bool(self.destinations)


def tenant_destinations(number: str, configuration: SipConfiguration) -> tuple[Destination, ...]:
    """The enabled trunks, in order, of the first of the tenant's routes matching ``number``."""
    for route in configuration.routes:
        if not route_matches(route, number):
            continue
        trunks = (configuration.trunks.get(fqdn) for fqdn in route.trunks)
        return tuple(
            Destination(
                RouteSource.TENANT,
                route.name,
                trunk.fqdn,
                trunk.fqdn,
                trunk.sip_signaling_port,
                Transport(TENANT_TRUNK_TRANSPORT),
            )
            for trunk in trunks
            if trunk is not None and trunk.enabled
        )
    return ()


def operator_destinations(
    number: str, routes: Iterable[OperatorRoute], trunks: Mapping[str, OperatorTrunk]
) -> tuple[Destination, ...]:
    """The enabled trunks of the operator's longest-prefix route for ``number`` that has any
    (the first such route when two have the same prefix)."""
    best: tuple[Destination, ...] = ()
    best_length = -1
    for route in routes:
        if len(route.prefix) <= best_length or not number.startswith(route.prefix):
            continue
        found = tuple(
            Destination(RouteSource.OPERATOR, route.prefix, t.name, t.host, t.port, t.transport)
            for t in (trunks.get(name) for name in route.trunks)
            if t is not None and t.enabled
        )
        if found:
            best, best_length = found, len(route.prefix)
    return best


def plan_outbound(
    number: str,
    tenant: SipConfiguration,
    operator_routes: Sequence[OperatorRoute],
    operator_trunks: Mapping[str, OperatorTrunk],
) -> OutboundPlan:
    """Where a call to ``number`` (E.164) goes: the tenant's route's trunks, then the
    operator's (see the module's docstring)."""
    return OutboundPlan(
        number,
        tenant_destinations(number, tenant) + operator_destinations(number, operator_routes, operator_trunks),
    )


# Inbound ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InviteSource:
    """The verdict on an INVITE's source address: the trunk it came through, or None (refused)."""

    address: str
    trunk: str | None

    @property
    def allowed(self) -> bool:
        return self.trunk is not None


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (a bare address is a /32 or /128); host bits are dropped. ValueError if one is not
    an address or network."""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def trunk_networks(host: str, allowed: Iterable[str]) -> tuple[IPNetwork, ...]:
    """A trunk's networks: its allow-list, or else its host when that is an IP address."""
    networks = parse_networks(allowed)
    if networks:
        return networks
    try:
        return (ipaddress.ip_network(host),)
    except ValueError:
        return ()


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def trunk_for_source(address: str, trunks: Iterable[OperatorTrunk]) -> InviteSource:
    """Which enabled trunk ``address`` belongs to: the one with the most specific network holding
    it (the first given, on a tie); refused when none holds it or it is not an IP address."""
    ip = _address(address)
    chosen: str | None = None
    best_prefix = -1
    if ip is not None:
        for trunk in trunks:
            if not trunk.enabled:
                continue
            for network in trunk.networks:
                if network.version == ip.version and ip in network and network.prefixlen > best_prefix:
                    chosen, best_prefix = trunk.name, network.prefixlen
    return InviteSource(address, chosen)
