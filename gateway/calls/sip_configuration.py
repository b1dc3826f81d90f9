"""A tenant's own SIP configuration (SipRouting 2023-03-01), pure: its shape, the merge patch
``PATCH /sip`` applies to it, and the checks ACS makes on the result.

The patch is JSON merge patch (RFC 7396) as the ``SipRoutingClient`` sends it: ``trunks`` is a
map keyed by FQDN whose ``null`` values delete a trunk (deleting one that does not exist is no
error) and whose objects add a trunk or change its fields; ``routes`` replaces the whole list.
A failed check names ACS's inner error code (``MissingTrunk``, ``DuplicatedRoute``, ...: the
codes its service answers, as the SDKs' recorded tests show) with a sentence about the input.
Number patterns are .NET regular expressions; ``compile_number_pattern`` reads the .NET forms
that Python's ``re`` spells differently.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

API_VERSION = "2023-03-01"
MAX_TRUNKS = 250
MAX_ROUTES = 250
MAX_ROUTE_TRUNKS = 250
MAX_FQDN_LENGTH = 249
MAX_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 1024
MAX_PATTERN_LENGTH = 1024


@dataclass(frozen=True)
class Trunk:
    fqdn: str
    sip_signaling_port: int
    enabled: bool = True


@dataclass(frozen=True)
class Route:
    name: str
    number_pattern: str
    trunks: tuple[str, ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class SipConfiguration:
    """Trunks by FQDN, and routes in the order they are tried."""

    trunks: Mapping[str, Trunk] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class TrunkChange:
    """One member of the patch's ``trunks``: delete the trunk, or set the fields given (None:
    left as it is)."""

    fqdn: str
    delete: bool = False
    sip_signaling_port: int | None = None


@dataclass(frozen=True)
class SipConfigurationPatch:
    trunk_changes: tuple[TrunkChange, ...] = ()
    delete_all_trunks: bool = False
    routes: tuple[Route, ...] | None = None  # None: the routes stay as they are


class Problem(StrEnum):
    """Why a configuration or a patch is refused: ACS's inner error codes."""

    INVALID_BODY = "InvalidRequestBody"
    EMPTY_PATCH = "EmptyPatch"
    INVALID_TRUNK_FQDN = "InvalidTrunkFqdn"
    INVALID_TRUNK_PORT = "InvalidTrunkSipSignalingPort"
    TOO_MANY_TRUNKS = "TooManyTrunks"
    INVALID_ROUTE_NAME = "InvalidRouteName"
    INVALID_ROUTE_DESCRIPTION = "InvalidRouteDescription"
    INVALID_ROUTE_NUMBER_PATTERN = "InvalidRouteNumberPattern"
    INVALID_ROUTE_TRUNKS = "InvalidRouteTrunks"
    TOO_MANY_ROUTES = "TooManyRoutes"
    DUPLICATED_ROUTE = "DuplicatedRoute"
    ROUTE_WITH_DUPLICATED_TRUNK = "RouteWithDuplicatedTrunk"
    MISSING_TRUNK = "MissingTrunk"


class InvalidConfiguration(ValueError):
    """A patch or configuration ACS would refuse: ``problem`` is the inner error code, ``message``
    a sentence about the input, ``target`` where in the body (``routes[1].trunks[0]``)."""

    def __init__(self, problem: Problem, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.target = target


# Number patterns ------------------------------------------------------------------------------


def dotnet_to_python_pattern(pattern: str) -> str:
    """``pattern`` (.NET syntax) in Python ``re`` syntax: named groups ``(?<name>...)`` and
    back-references ``\\k<name>`` in Python's spelling, and a quantifier right after an anchor
    (``^+``, which .NET accepts and applies to the zero-width anchor) on a group holding the anchor.
    Everything else means the same in both."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        char = pattern[i]
        if char == "\\":
            if not in_class and pattern.startswith("\\k<", i) and (end := pattern.find(">", i)) != -1:
                out.append(f"(?P={pattern[i + 3 : end]})")
                i = end + 1
            else:
                out.append(pattern[i : i + 2])
                i += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            i += 1
            # A "]" first in a class (after an optional "^") is a literal.
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if char in "^$" and i + 1 < n and pattern[i + 1] in "*+?{":
            out.append(f"(?:{char})")
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def compile_number_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled form of a route's ``numberPattern``; ``re.error`` when it is not a regex."""
    return re.compile(dotnet_to_python_pattern(pattern))


def route_matches(route: Route, number: str) -> bool:
    """Whether ``route``'s pattern matches the whole of ``number`` (E.164, with its "+")."""
    try:
        return compile_number_pattern(route.number_pattern).fullmatch(number) is not None
    except re.error:
        return False


# FQDNs ----------------------------------------------------------------------------------------

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def is_fqdn(value: str) -> bool:
    """A fully qualified domain name as ACS takes a trunk's: 1-249 characters, two labels or
    more, letters, digits and inner hyphens; not an IP address."""
    if not 1 <= len(value) <= MAX_FQDN_LENGTH:
        return False
    labels = value.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        return False
    return not labels[-1].isdigit()


# Parsing the patch ----------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _port(value: Any, target: str, fqdn: str) -> int:
    if not _is_int(value) or not 1 <= value <= 65535:
        raise InvalidConfiguration(
            Problem.INVALID_TRUNK_PORT,
            f"The sipSignalingPort of trunk '{fqdn}' must be a whole number from 1 to 65535, not {value!r}.",
            target,
        )
    return int(value)


def _trunk_change(fqdn: str, value: Any) -> TrunkChange:
    target = f"trunks.{fqdn}"
    if not is_fqdn(fqdn):
        raise InvalidConfiguration(
            Problem.INVALID_TRUNK_FQDN,
            f"The trunk key '{fqdn}' is not a fully qualified domain name (1-{MAX_FQDN_LENGTH} characters, "
            "such as sbc.example.com); a trunk is keyed by its FQDN.",
            target,
        )
    if value is None:
        return TrunkChange(fqdn, delete=True)
    if not isinstance(value, dict):
        raise InvalidConfiguration(
            Problem.INVALID_BODY,
            f"Trunk '{fqdn}' must be an object such as {{\"sipSignalingPort\": 5061}}, or null to delete it.",
            target,
        )
    port = value.get("sipSignalingPort")
    if port is None:
        return TrunkChange(fqdn)
    return TrunkChange(fqdn, sip_signaling_port=_port(port, f"{target}.sipSignalingPort", fqdn))


def _route(index: int, value: Any) -> Route:
    target = f"routes[{index}]"
    if not isinstance(value, dict):
        raise InvalidConfiguration(
            Problem.INVALID_BODY,
            f"Route {index + 1} must be an object with a name and a numberPattern.",
            target,
        )
    name = value.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidConfiguration(
            Problem.INVALID_ROUTE_NAME,
            f"Route {index + 1} needs a name of 1 to {MAX_NAME_LENGTH} characters, not {name!r}.",
            f"{target}.name",
        )
    description = value.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH
    ):
        raise InvalidConfiguration(
            Problem.INVALID_ROUTE_DESCRIPTION,
            f"The description of route '{name}' must be text of at most {MAX_DESCRIPTION_LENGTH} characters.",
            f"{target}.description",
        )
    pattern = value.get("numberPattern")
    if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidConfiguration(
            Problem.INVALID_ROUTE_NUMBER_PATTERN,
            f"Route '{name}' needs a numberPattern: a regular expression of 1 to "
            f"{MAX_PATTERN_LENGTH} characters such as ^\\+1[0-9]{{10}}$.",
            f"{target}.numberPattern",
        )
    try:
        compile_number_pattern(pattern)
    except re.error as exc:
        raise InvalidConfiguration(
            Problem.INVALID_ROUTE_NUMBER_PATTERN,
            f"The numberPattern of route '{name}' is not a valid regular expression ({exc}).",
            f"{target}.numberPattern",
        ) from exc
    trunks = value.get("trunks")
    if trunks is None:
        trunks = []
    if not isinstance(trunks, list) or not all(isinstance(t, str) for t in trunks):
        raise InvalidConfiguration(
            Problem.INVALID_ROUTE_TRUNKS,
            f"The trunks of route '{name}' must be a list of trunk FQDNs.",
            f"{target}.trunks",
        )
    if len(trunks) > MAX_ROUTE_TRUNKS:
        raise InvalidConfiguration(
            Problem.INVALID_ROUTE_TRUNKS,
            f"Route '{name}' lists {len(trunks)} trunks; at most {MAX_ROUTE_TRUNKS} are allowed.",
            f"{target}.trunks",
        )
    seen: set[str] = set()
    for position, fqdn in enumerate(trunks):
        if fqdn in seen:
            raise InvalidConfiguration(
                Problem.ROUTE_WITH_DUPLICATED_TRUNK,
                f"Route '{name}' lists trunk '{fqdn}' twice.",
                f"{target}.trunks[{position}]",
            )
        seen.add(fqdn)
    return Route(name=name, number_pattern=pattern, trunks=tuple(trunks), description=description)


def parse_patch(body: Any) -> SipConfigurationPatch:
    """The ``PATCH /sip`` body as a patch; InvalidConfiguration when it is malformed or empty."""
    if not isinstance(body, dict):
        raise InvalidConfiguration(
            Problem.INVALID_BODY,
            "The request body must be a JSON object with 'trunks' (a map keyed by FQDN) and/or "
            "'routes' (a list).",
        )
    patch = SipConfigurationPatch()
    if "trunks" in body:
        trunks = body["trunks"]
        if trunks is None:
            patch = replace(patch, delete_all_trunks=True)
        elif isinstance(trunks, dict):
            changes = tuple(_trunk_change(fqdn, value) for fqdn, value in trunks.items())
            patch = replace(patch, trunk_changes=changes)
        else:
            raise InvalidConfiguration(
                Problem.INVALID_BODY,
                "The 'trunks' member must be a map from trunk FQDN to trunk (or to null, to delete it).",
                "trunks",
            )
    if "routes" in body:
        routes = body["routes"]
        if routes is None:
            routes = []
        if not isinstance(routes, list):
            raise InvalidConfiguration(
                Problem.INVALID_BODY, "The 'routes' member must be a list of routes.", "routes"
            )
        if len(routes) > MAX_ROUTES:
            raise InvalidConfiguration(
                Problem.TOO_MANY_ROUTES,
                f"The patch gives {len(routes)} routes; at most {MAX_ROUTES} are allowed.",
                "routes",
            )
        patch = replace(patch, routes=tuple(_route(i, r) for i, r in enumerate(routes)))
    if not patch.trunk_changes and not patch.delete_all_trunks and patch.routes is None:
        raise InvalidConfiguration(
            Problem.EMPTY_PATCH,
            "The patch changes nothing: give 'trunks' with at least one trunk, or 'routes'.",
        )
    return patch


# Applying it ----------------------------------------------------------------------------------


def apply_patch(current: SipConfiguration, patch: SipConfigurationPatch) -> SipConfiguration:
    """The configuration ``patch`` makes of ``current``, checked (see ``check``)."""
    trunks: dict[str, Trunk] = {} if patch.delete_all_trunks else dict(current.trunks)
    for change in patch.trunk_changes:
        existing = trunks.get(change.fqdn)
        if change.delete:
            trunks.pop(change.fqdn, None)
        elif existing is not None:
            if change.sip_signaling_port is not None:
                trunks[change.fqdn] = replace(existing, sip_signaling_port=change.sip_signaling_port)
        elif change.sip_signaling_port is None:
            raise InvalidConfiguration(
                Problem.INVALID_TRUNK_PORT,
                f"Trunk '{change.fqdn}' is new and needs a sipSignalingPort.",
                f"trunks.{change.fqdn}.sipSignalingPort",
            )
        else:
            trunks[change.fqdn] = Trunk(change.fqdn, change.sip_signaling_port)
    routes = current.routes if patch.routes is None else patch.routes
    result = SipConfiguration(trunks=trunks, routes=routes)
    check(result)
    return result


def check(configuration: SipConfiguration) -> None:
    """What ACS checks across the whole configuration: at most 250 trunks and routes, route
    names unique, and every trunk a route names configured."""
    if len(configuration.trunks) > MAX_TRUNKS:
        raise InvalidConfiguration(
            Problem.TOO_MANY_TRUNKS,
            f"The configuration would have {len(configuration.trunks)} trunks; at most "
            f"{MAX_TRUNKS} are allowed.",
            "trunks",
        )
    names: set[str] = set()
    for index, route in enumerate(configuration.routes):
        if route.name in names:
            raise InvalidConfiguration(
                Problem.DUPLICATED_ROUTE,
                f"Two routes are named '{route.name}'; route names must be unique.",
                f"routes[{index}].name",
            )
        names.add(route.name)
        for position, fqdn in enumerate(route.trunks):
            if fqdn not in configuration.trunks:
                raise InvalidConfiguration(
                    Problem.MISSING_TRUNK,
                    f"Route '{route.name}' uses trunk '{fqdn}', which is not configured; add "
                    "the trunk first (or keep it while a route uses it).",
                    f"routes[{index}].trunks[{position}]",
                )


def configuration_json(configuration: SipConfiguration) -> dict[str, Any]:
    """The ``SipConfiguration`` document of SipRouting 2023-03-01."""
    routes: list[dict[str, Any]] = []
    for route in configuration.routes:
        item: dict[str, Any] = {"name": route.name, "numberPattern": route.number_pattern}
        if route.description is not None:
            item["description"] = route.description
        item["trunks"] = list(route.trunks)
        routes.append(item)
    return {
        "trunks": {
            fqdn: {"sipSignalingPort": configuration.trunks[fqdn].sip_signaling_port}
            for fqdn in sorted(configuration.trunks)
        },
        "routes": routes,
    }
