"""calls.sip_configuration: the SipRouting merge patch and ACS's checks, pure; .NET number
patterns read by Python's re."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.calls.sip_configuration import (
    InvalidConfiguration,
    Problem,
    Route,
    SipConfiguration,
    Trunk,
    apply_patch,
    configuration_json,
    dotnet_to_python_pattern,
    is_fqdn,
    parse_patch,
)

BASE = SipConfiguration(
    trunks={"a.example.com": Trunk("a.example.com", 5061), "b.example.com": Trunk("b.example.com", 5062)},
    routes=(Route("r1", r"^\+1\d+$", ("a.example.com",), "first"),),
)


def _patched(body: Any, current: SipConfiguration = BASE) -> SipConfiguration:
    return apply_patch(current, parse_patch(body))


def _problem(body: Any, current: SipConfiguration = BASE) -> InvalidConfiguration:
    with pytest.raises(InvalidConfiguration) as caught:
        _patched(body, current)
    return caught.value


def test_trunks_merge_and_null_deletes() -> None:
    after = _patched({"trunks": {"c.example.com": {"sipSignalingPort": 5070}, "b.example.com": None}})
    assert sorted(after.trunks) == ["a.example.com", "c.example.com"]
    assert after.routes == BASE.routes
    # Deleting what is not there is no error; an empty object changes nothing.
    assert _patched({"trunks": {"x.example.com": None, "a.example.com": {}}}) == BASE
    changed = _patched({"trunks": {"a.example.com": {"sipSignalingPort": 6000}}})
    assert changed.trunks["a.example.com"].sip_signaling_port == 6000


def test_routes_replace_the_list_and_null_or_empty_clears_it() -> None:
    routes = [{"name": "x", "numberPattern": r"^\+44\d+$", "trunks": ["b.example.com", "a.example.com"]}]
    after = _patched({"routes": routes})
    assert after.routes == (Route("x", r"^\+44\d+$", ("b.example.com", "a.example.com")),)
    assert _patched({"routes": []}).routes == ()
    assert _patched({"routes": None}).routes == ()
    assert _patched({"trunks": None}, SipConfiguration(BASE.trunks)).trunks == {}


@pytest.mark.parametrize(
    ("body", "problem", "target"),
    [
        ({}, Problem.EMPTY_PATCH, None),
        ({"trunks": {}}, Problem.EMPTY_PATCH, None),
        ([], Problem.INVALID_BODY, None),
        ({"trunks": []}, Problem.INVALID_BODY, "trunks"),
        ({"routes": {}}, Problem.INVALID_BODY, "routes"),
        ({"trunks": {"-1": {"sipSignalingPort": 5061}}}, Problem.INVALID_TRUNK_FQDN, "trunks.-1"),
        ({"trunks": {"10.0.0.1": {"sipSignalingPort": 5061}}}, Problem.INVALID_TRUNK_FQDN, "trunks.10.0.0.1"),
        ({"trunks": {"n.example.com": {"sipSignalingPort": 0}}}, Problem.INVALID_TRUNK_PORT, None),
        ({"trunks": {"n.example.com": {"sipSignalingPort": "5061"}}}, Problem.INVALID_TRUNK_PORT, None),
        ({"trunks": {"n.example.com": {}}}, Problem.INVALID_TRUNK_PORT, None),
        ({"trunks": {"n.example.com": 5}}, Problem.INVALID_BODY, None),
        ({"routes": [{"name": "", "numberPattern": "^1$"}]}, Problem.INVALID_ROUTE_NAME, "routes[0].name"),
        ({"routes": [{"numberPattern": "^1$"}]}, Problem.INVALID_ROUTE_NAME, "routes[0].name"),
        ({"routes": [{"name": "x", "numberPattern": ""}]}, Problem.INVALID_ROUTE_NUMBER_PATTERN, None),
        ({"routes": [{"name": "x", "numberPattern": "(["}]}, Problem.INVALID_ROUTE_NUMBER_PATTERN, None),
        ({"routes": [{"name": "x", "numberPattern": "^1$", "description": "d" * 1025}]}, None, None),
        (
            {"routes": [{"name": "x", "numberPattern": "^1$", "trunks": ["z.example.com"]}]},
            Problem.MISSING_TRUNK,
            "routes[0].trunks[0]",
        ),
        (
            {"routes": [{"name": "x", "numberPattern": "^1$", "trunks": ["a.example.com", "a.example.com"]}]},
            Problem.ROUTE_WITH_DUPLICATED_TRUNK,
            "routes[0].trunks[1]",
        ),
        (
            {"routes": [{"name": "x", "numberPattern": "^1$"}, {"name": "x", "numberPattern": "^2$"}]},
            Problem.DUPLICATED_ROUTE,
            "routes[1].name",
        ),
        ({"trunks": {"a.example.com": None}}, Problem.MISSING_TRUNK, "routes[0].trunks[0]"),
        ({"trunks": None}, Problem.MISSING_TRUNK, "routes[0].trunks[0]"),
        ({"routes": [{"name": "x", "numberPattern": "^1$"}] * 251}, Problem.TOO_MANY_ROUTES, "routes"),
    ],
)
def test_refusals_name_acs_problem_and_place(body: Any, problem: Problem | None, target: str | None) -> None:
    refused = _problem(body)
    assert refused.problem is (problem or Problem.INVALID_ROUTE_DESCRIPTION)
    if target is not None:
        assert refused.target == target
    assert refused.message.endswith(".")
    assert refused.message[0].isupper()


def test_too_many_trunks() -> None:
    def adding(count: int) -> dict[str, Any]:
        return {"trunks": {f"t{i}.example.com": {"sipSignalingPort": 5061} for i in range(count)}}

    assert len(_patched(adding(248)).trunks) == 250  # BASE has 2
    refused = _problem(adding(249))
    assert refused.problem is Problem.TOO_MANY_TRUNKS


def test_json_shape_is_the_spec_example() -> None:
    config = _patched(
        {
            "trunks": {"vendor.xyz.biz": {"sipSignalingPort": 5061}, "a.example.com": None},
            "routes": [
                {"name": "LocalRoute", "numberPattern": r"^\+1[0-9]{10}$"},
                {
                    "name": "VendorXYZ",
                    "description": "External route XYZ",
                    "numberPattern": r"^\+?\d+$",
                    "trunks": ["vendor.xyz.biz"],
                },
            ],
        }
    )
    assert configuration_json(config) == {
        "trunks": {"b.example.com": {"sipSignalingPort": 5062}, "vendor.xyz.biz": {"sipSignalingPort": 5061}},
        "routes": [
            {"name": "LocalRoute", "numberPattern": r"^\+1[0-9]{10}$", "trunks": []},
            {
                "name": "VendorXYZ",
                "numberPattern": r"^\+?\d+$",
                "description": "External route XYZ",
                "trunks": ["vendor.xyz.biz"],
            },
        ],
    }


def test_fqdns() -> None:
    for good in ("sbc.example.com", "a.b", "x-1.example.co.uk", "A.EXAMPLE.COM"):
        assert is_fqdn(good)
    for bad in (
        "-1",
        "localhost",
        "sbc..example.com",
        "-a.example.com",
        "a-.example.com",
        "1.2.3.4",
        "a" * 250,
    ):
        assert not is_fqdn(bad)


def test_dotnet_forms() -> None:
    assert dotnet_to_python_pattern(r"^\+1(?<area>\d{3})\k<area>$") == r"^\+1(?P<area>\d{3})(?P=area)$"
    assert dotnet_to_python_pattern("^+1$") == "(?:^)+1$"
    assert dotnet_to_python_pattern(r"(?<=\+)1(?<!2)") == r"(?<=\+)1(?<!2)"
    assert dotnet_to_python_pattern(r"[]^+]\^+") == r"[]^+]\^+"
    assert dotnet_to_python_pattern(r"[\]^]+$") == r"[\]^]+$"


# Properties ----------------------------------------------------------------------------------------

fqdns = st.sampled_from(["a.example.com", "b.example.com", "c.example.com", "d.example.com"])
trunk_values = st.one_of(
    st.none(), st.just({}), st.builds(lambda p: {"sipSignalingPort": p}, st.integers(1, 65535))
)
# Patterns Python and .NET read alike.
plain_patterns = st.lists(
    st.sampled_from([r"\+", r"\d", "[0-9]", "1", "4", "(4|5)", r"\d{2}", "[1-9]?", ".*"]),
    min_size=1,
    max_size=5,
).map(lambda parts: "^" + "".join(parts) + "$")


@given(st.dictionaries(fqdns, trunk_values, min_size=1))
def test_trunk_patches_follow_merge_patch(changes: dict[str, Any]) -> None:
    current = SipConfiguration(trunks={"a.example.com": Trunk("a.example.com", 5061)})
    if any(v == {} and f not in current.trunks for f, v in changes.items()):
        # A new trunk without a port is refused (and only that).
        assert _problem({"trunks": changes}, current).problem is Problem.INVALID_TRUNK_PORT
        return
    after = _patched({"trunks": changes}, current)
    for fqdn in {"a.example.com", *changes}:
        value = changes.get(fqdn, "absent")
        if value is None:
            assert fqdn not in after.trunks
        elif value == "absent" or value == {}:
            assert after.trunks.get(fqdn) == current.trunks.get(fqdn)
        else:
            assert after.trunks[fqdn].sip_signaling_port == value["sipSignalingPort"]


@given(plain_patterns, st.text("+0123456789", max_size=8))
def test_plain_patterns_are_left_alone(pattern: str, number: str) -> None:
    assert dotnet_to_python_pattern(pattern) == pattern
    assert (re.fullmatch(dotnet_to_python_pattern(pattern), number) is None) == (
        re.fullmatch(pattern, number) is None
    )


@given(st.lists(st.sampled_from(["r1", "r2", "r3"]), max_size=4))
def test_route_names_must_be_unique(names: list[str]) -> None:
    body = {"routes": [{"name": n, "numberPattern": r"^\+\d+$"} for n in names]}
    if len(set(names)) == len(names):
        assert [r.name for r in _patched(body).routes] == names
    else:
        assert _problem(body).problem is Problem.DUPLICATED_ROUTE
