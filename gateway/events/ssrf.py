"""SSRF guard for webhook destinations.

``classify`` names why an address must not be contacted (pure); ``check_destination`` applies the
policy to a URL given a resolver, so registration and the connect-time check share one rule. The
connect-time check lives in :mod:`gateway.events.http`, which resolves, checks and then connects
to exactly the address it checked (no second lookup an attacker could rebind).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class AddressClass(StrEnum):
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    CLOUD_METADATA = "cloud-metadata"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"


# Instance-metadata endpoints that are not already link-local (AWS IPv6, Alibaba, Azure's
# wireserver, Oracle) plus the well-known link-local one, so it is reported as what it is.
CLOUD_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16", "192.0.0.192")
)
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")


# The setting that exempts networks from the guard; every refusal that it could lift names it.
ALLOWED_NETWORKS_SETTING = "TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS"
# What to suggest for each kind of address, where allowing it is a reasonable thing to do.
_SUGGESTED_NETWORK = {
    "loopback": {4: "127.0.0.0/8", 6: "::1/128"},
}


class DestinationRefused(ValueError):
    """The destination is not allowed; ``reason`` is safe to show to the subscriber.

    ``by_policy``: refused for its address (an operator setting could allow it), as opposed to
    a URL that is malformed or a host that does not resolve.
    """

    def __init__(self, reason: str, *, by_policy: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.by_policy = by_policy


def _how_to_allow(kind: AddressClass, address: IPAddress) -> str:
    """The sentence naming the setting that would allow ``address``."""
    network = _SUGGESTED_NETWORK.get(kind.value, {}).get(address.version)
    if network is None:
        prefix = 32 if address.version == 4 else 128
        network = f"{address}/{prefix}"
    return f"the operator can allow it with the setting {ALLOWED_NETWORKS_SETTING}={network}"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def classify(address: IPAddress) -> AddressClass | None:  # noqa: PLR0911 - one rule per class
    """Why ``address`` is refused, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = classify(embedded)
            if inner is not None:
                return inner
    if address in CLOUD_METADATA_ADDRESSES:
        return AddressClass.CLOUD_METADATA
    if address.is_unspecified:
        return AddressClass.UNSPECIFIED
    if address.is_loopback:
        return AddressClass.LOOPBACK
    if address.is_link_local:
        return AddressClass.LINK_LOCAL
    if address.is_multicast:
        return AddressClass.MULTICAST
    if address.is_reserved:
        return AddressClass.RESERVED
    if address.is_private or (isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE):
        return AddressClass.PRIVATE
    if not address.is_global:
        return AddressClass.RESERVED
    return None


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _allowed(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in networks)


@dataclass(frozen=True)
class Policy:
    allowed_networks: tuple[IPNetwork, ...] = ()

    def check_address(self, address: str, scheme: str) -> IPAddress:
        """The parsed address if a request with ``scheme`` may go to it, else DestinationRefused."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if _allowed(ip, self.allowed_networks):
            return ip
        kind = classify(ip)
        if kind is not None:
            raise DestinationRefused(
                f"the destination resolves to a {kind.value} address ({ip}); {_how_to_allow(kind, ip)}",
                by_policy=True,
            )
        if scheme != "https":
            raise DestinationRefused(
                "the destination must be an https:// URL (plain http:// only inside "
                f"{ALLOWED_NETWORKS_SETTING})"
            )
        return ip


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or DestinationRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"the destination is not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused("the destination must be an https:// URL")
    if parts.username or parts.password:
        raise DestinationRefused("the destination must not carry credentials in the URL")
    host = parts.hostname
    if not host:
        raise DestinationRefused("the destination URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_destination(url: str, policy: Policy, resolver: Resolver = system_resolver) -> list[IPAddress]:
    """Every address ``url`` resolves to, if all are allowed; else DestinationRefused.

    One refused address refuses the destination, so DNS round-robin cannot smuggle one in.
    """
    scheme, host, port = split_url(url)
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        raise DestinationRefused(f"the destination host '{host}' does not resolve") from exc
    if not addresses:
        raise DestinationRefused(f"the destination host '{host}' does not resolve")
    return [policy.check_address(a, scheme) for a in addresses]
