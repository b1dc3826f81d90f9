"""calls.routing: outbound route plans (tenant routes first, then the operator's longest prefix)
and the INVITE allow-list, by example and by property against plain reference definitions."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from gateway.calls.routing import (
    Destination,
    OperatorRoute,
    OperatorTrunk,
    RouteSource,
    Transport,
    operator_destinations,
    plan_outbound,
    tenant_destinations,
    trunk_for_source,
    trunk_networks,
)
from gateway.calls.sip_configuration import Route, SipConfiguration, Trunk, route_matches

NUMBER = "+14255550123"


def _operator(*names: str, enabled: bool = True) -> dict[str, OperatorTrunk]:
    return {n: OperatorTrunk(n, f"{n}.example", 5060, Transport.UDP, enabled=enabled) for n in names}


def test_the_first_matching_tenant_route_decides_with_its_enabled_trunks_in_order() -> None:
    config = SipConfiguration(
        trunks={
            "a.example.com": Trunk("a.example.com", 5061),
            "b.example.com": Trunk("b.example.com", 5062, enabled=False),
            "c.example.com": Trunk("c.example.com", 5063),
        },
        routes=(
            Route("uk", r"^\+44\d+$", ("a.example.com",)),
            Route("us", r"^\+1\d{10}$", ("c.example.com", "b.example.com", "a.example.com")),
            Route("all", r"^\+\d+$", ("a.example.com",)),
        ),
    )
    found = tenant_destinations(NUMBER, config)
    assert [(d.trunk, d.port, d.route, d.transport) for d in found] == [
        ("c.example.com", 5063, "us", Transport.TLS),
        ("a.example.com", 5061, "us", Transport.TLS),
    ]
    assert all(d.source is RouteSource.TENANT for d in found)


def test_a_matching_route_without_trunks_hands_the_call_to_the_operator() -> None:
    config = SipConfiguration(
        trunks={"a.example.com": Trunk("a.example.com", 5061)},
        routes=(Route("local", r"^\+1\d{10}$"), Route("all", r"^\+\d+$", ("a.example.com",))),
    )
    plan = plan_outbound(NUMBER, config, [OperatorRoute("+1", ("op",))], _operator("op"))
    assert [(d.source, d.trunk) for d in plan.destinations] == [(RouteSource.OPERATOR, "op")]


def test_patterns_match_the_whole_number_in_dotnet_syntax() -> None:
    assert route_matches(Route("r", r"^\+1(?<area>425)\d{7}$"), NUMBER)
    assert not route_matches(Route("r", r"\+1425"), NUMBER)  # a part is not enough
    # .NET takes "^+" (a quantified anchor); it then matches numbers without their "+".
    assert route_matches(Route("r", "^+[1-9][0-9]{3,23}$"), "14255550123")
    assert not route_matches(Route("r", "^+[1-9][0-9]{3,23}$"), NUMBER)


def test_operator_routes_by_longest_prefix_then_tenant_first() -> None:
    routes = [
        OperatorRoute("+", ("world",)),
        OperatorRoute("+1", ("na1", "na2")),
        OperatorRoute("+1425", ("off",)),
        OperatorRoute("+44", ("uk",)),
    ]
    trunks = {**_operator("world", "na1", "na2", "uk"), **_operator("off", enabled=False)}
    # +1425's only trunk is disabled: +1 is the longest prefix with one to use.
    assert [d.trunk for d in operator_destinations(NUMBER, routes, trunks)] == ["na1", "na2"]
    assert [d.trunk for d in operator_destinations("+33123456789", routes, trunks)] == ["world"]
    tenant = SipConfiguration(
        trunks={"sbc.example.com": Trunk("sbc.example.com", 5061)},
        routes=(Route("r", r"^\+1\d+$", ("sbc.example.com",)),),
    )
    plan = plan_outbound(NUMBER, tenant, routes, trunks)
    assert [d.trunk for d in plan.destinations] == ["sbc.example.com", "na1", "na2"]
    assert plan.routable
    assert not plan_outbound("+33123", SipConfiguration(), routes[1:], trunks).routable


def test_allow_list_names_the_most_specific_trunk_and_refuses_others() -> None:
    trunks = [
        OperatorTrunk(
            "wide", "sip.example", 5060, Transport.UDP, trunk_networks("sip.example", ["10.0.0.0/8"])
        ),
        OperatorTrunk("narrow", "10.1.2.3", 5060, Transport.UDP, trunk_networks("10.1.2.3", [])),
        OperatorTrunk("v6", "sip6.example", 5060, Transport.UDP, trunk_networks("x", ["2001:db8::/32"])),
        OperatorTrunk(
            "off", "192.0.2.1", 5060, Transport.UDP, trunk_networks("192.0.2.1", []), enabled=False
        ),
    ]
    assert trunk_for_source("10.1.2.3", trunks).trunk == "narrow"
    assert trunk_for_source("::ffff:10.1.2.3", trunks).trunk == "narrow"
    assert trunk_for_source("10.9.9.9", trunks).trunk == "wide"
    assert trunk_for_source("[2001:db8::5]", trunks).trunk == "v6"
    for refused in ("192.0.2.1", "203.0.113.7", "not an address", ""):
        verdict = trunk_for_source(refused, trunks)
        assert not verdict.allowed
        assert verdict.trunk is None
    assert trunk_networks("sip.example", []) == ()


# Properties ----------------------------------------------------------------------------------------

digits = st.text("0123456789", min_size=1, max_size=12)
numbers = digits.map(lambda d: "+" + d)
prefixes = st.text("0123456789", max_size=4).map(lambda d: "+" + d)
trunk_names = st.sampled_from(["t0", "t1", "t2", "t3", "t4"])
fqdns = st.sampled_from(["a.example.com", "b.example.com", "c.example.com"])
patterns = st.sampled_from([r"^\+1\d*$", r"^\+\d+$", r"^\+44\d*$", r"^\+[0-9]{3}$", r"\+2.*", "^+1[0-9]+$"])


@st.composite
def operator_setups(draw: st.DrawFn) -> tuple[list[OperatorRoute], dict[str, OperatorTrunk]]:
    trunks = {
        name: OperatorTrunk(name, f"{name}.example", 5060, Transport.UDP, enabled=draw(st.booleans()))
        for name in draw(st.sets(trunk_names))
    }
    routes = draw(
        st.lists(
            st.builds(OperatorRoute, prefixes, st.lists(trunk_names, unique=True, min_size=1).map(tuple)),
            max_size=6,
        )
    )
    return routes, trunks


@st.composite
def tenant_setups(draw: st.DrawFn) -> SipConfiguration:
    trunks = {f: Trunk(f, draw(st.integers(1, 65535)), draw(st.booleans())) for f in draw(st.sets(fqdns))}
    routes = draw(
        st.lists(
            st.builds(
                Route,
                st.text("abc", min_size=1, max_size=3),
                patterns,
                st.lists(fqdns, unique=True).map(tuple),
            ),
            max_size=5,
        )
    )
    return SipConfiguration(trunks, tuple(routes))


def _usable(route: OperatorRoute, trunks: dict[str, OperatorTrunk]) -> list[str]:
    return [n for n in route.trunks if n in trunks and trunks[n].enabled]


@given(numbers, operator_setups())
def test_operator_choice_is_the_longest_usable_prefix(
    number: str, setup: tuple[list[OperatorRoute], dict[str, OperatorTrunk]]
) -> None:
    routes, trunks = setup
    chosen = operator_destinations(number, routes, trunks)
    candidates = [r for r in routes if number.startswith(r.prefix) and _usable(r, trunks)]
    if not candidates:
        assert chosen == ()
        return
    longest = max(len(r.prefix) for r in candidates)
    first = next(r for r in candidates if len(r.prefix) == longest)
    assert [d.trunk for d in chosen] == _usable(first, trunks)
    assert all(d.source is RouteSource.OPERATOR and d.route == first.prefix for d in chosen)


@given(numbers, tenant_setups(), operator_setups())
def test_plan_is_the_first_matching_tenant_route_then_the_operator(
    number: str, tenant: SipConfiguration, setup: tuple[list[OperatorRoute], dict[str, OperatorTrunk]]
) -> None:
    routes, trunks = setup
    plan = plan_outbound(number, tenant, routes, trunks)
    first = next((r for r in tenant.routes if route_matches(r, number)), None)
    expected_tenant: list[Destination] = []
    if first is not None:
        expected_tenant = [
            Destination(
                RouteSource.TENANT, first.name, f, f, tenant.trunks[f].sip_signaling_port, Transport.TLS
            )
            for f in first.trunks
            if f in tenant.trunks and tenant.trunks[f].enabled
        ]
    count = len(expected_tenant)
    assert list(plan.destinations[:count]) == expected_tenant
    assert plan.destinations[count:] == operator_destinations(number, routes, trunks)
    assert all(d.source is RouteSource.OPERATOR for d in plan.destinations[count:])


networks_v4 = st.builds(
    lambda address, length: ipaddress.ip_network(f"{ipaddress.IPv4Address(address)}/{length}", strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(8, 32),
)


@given(
    st.lists(st.tuples(st.lists(networks_v4, min_size=1, max_size=3), st.booleans()), max_size=5),
    st.integers(0, 2**32 - 1),
)
def test_allow_list_is_the_most_specific_enabled_network(
    setups: list[tuple[list[ipaddress.IPv4Network], bool]], raw: int
) -> None:
    trunks = [
        OperatorTrunk(f"t{i}", "h.example", 5060, Transport.UDP, tuple(nets), enabled)
        for i, (nets, enabled) in enumerate(setups)
    ]
    address = ipaddress.IPv4Address(raw)
    verdict = trunk_for_source(str(address), trunks)
    holding = [(n.prefixlen, t.name) for t in trunks if t.enabled for n in t.networks if address in n]
    if not holding:
        assert not verdict.allowed
        return
    best = max(length for length, _ in holding)
    assert verdict.trunk == next(name for length, name in holding if length == best)


@given(st.lists(networks_v4, min_size=1, max_size=4), st.data())
def test_every_address_of_an_allowed_network_is_let_in(
    networks: list[ipaddress.IPv4Network], data: st.DataObject
) -> None:
    network = data.draw(st.sampled_from(networks))
    address = ipaddress.IPv4Address(
        data.draw(st.integers(int(network.network_address), int(network.broadcast_address)))
    )
    trunk = OperatorTrunk("t", "h.example", 5060, Transport.UDP, tuple(networks))
    assert trunk_for_source(str(address), [trunk]).trunk == "t"
    assert trunk_for_source(f"::ffff:{address}", [trunk]).trunk == "t"
