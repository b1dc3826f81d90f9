"""The operator's SIP trunks and routes: the rules the admin API, the CLI and the config file
share (a trunk belongs to a carrier of kind ``sip`` or ``both``; a route's trunks exist; a
prefix's trunks keep their order), and what the SIP side reads of them."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy.orm import Session

from gateway.calls import repository
from gateway.calls.models import SipTrunk
from gateway.calls.routing import OperatorRoute, OperatorTrunk, Transport, trunk_networks
from gateway.calls.schemas import RouteSpec, TrunkSpec, describe
from gateway.core.errors import BadRequest, Conflict, NotFound

SIP_CARRIER_KINDS = ("sip", "both")


class AppliedConfig(NamedTuple):
    """What ``apply_config_file`` did: trunks created or updated, prefixes whose routes it set."""

    trunks: int
    routes: int


def trunk_json(trunk: SipTrunk, carrier: str) -> dict[str, Any]:
    """A trunk as the admin API and ``--json`` show it (the password is never shown)."""
    return {
        "id": trunk.id,
        "name": trunk.name,
        "carrier": carrier,
        "host": trunk.host,
        "port": trunk.port,
        "transport": trunk.transport,
        "allow": list(trunk.allowed_networks or []),
        "username": trunk.username,
        "hasPassword": trunk.password is not None,
        "register": trunk.register,
        "codecs": list(trunk.codecs or []),
        "srtp": trunk.srtp,
        "refer": trunk.refer,
        "dtmf": trunk.dtmf,
        "enabled": trunk.enabled,
        "createdAt": trunk.created_at.isoformat(),
        "registration": {
            "state": trunk.registration_state or "pending",
            "status": trunk.registration_status,
            "reason": trunk.registration_reason,
        }
        if trunk.register
        else None,
    }


def _sip_carrier_id(session: Session, name: str) -> str:
    carrier = repository.carrier_by_name(session, name)
    if carrier is None:
        raise NotFound(
            f"There is no carrier named '{name}'; add it with `trunkline carriers add {name} --kind sip`.",
            "carrier",
        )
    if carrier.kind not in SIP_CARRIER_KINDS:
        raise Conflict(
            f"The carrier '{name}' is of kind '{carrier.kind}'; SIP trunks belong to carriers of kind "
            "'sip' or 'both'.",
            "carrier",
        )
    return carrier.id


def _trunk_values(session: Session, spec: TrunkSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "carrier_id": _sip_carrier_id(session, spec.carrier),
        "host": spec.host,
        "port": spec.port,
        "transport": spec.transport,
        "allowed_networks": list(spec.allow),
        "username": spec.username,
        "password": spec.password,
        "register": spec.register_with_carrier,
        "codecs": list(spec.codecs),
        "srtp": spec.srtp,
        "refer": spec.refer,
        "dtmf": spec.dtmf,
        "enabled": spec.enabled,
    }


def add_trunk(session: Session, spec: TrunkSpec) -> SipTrunk:
    if repository.trunk_by_name(session, spec.name) is not None:
        raise Conflict(f"A SIP trunk named '{spec.name}' exists already.", "name")
    return repository.add_trunk(session, _trunk_values(session, spec))


def list_trunks(session: Session) -> list[dict[str, Any]]:
    return [trunk_json(trunk, carrier) for trunk, carrier in repository.trunks_with_carriers(session)]


def get_trunk(session: Session, name: str) -> SipTrunk:
    trunk = repository.trunk_by_name(session, name)
    if trunk is None:
        raise NotFound(f"There is no SIP trunk named '{name}'.", "name")
    return trunk


def remove_trunk(session: Session, name: str) -> None:
    """Remove a trunk and its place in every route."""
    repository.delete_trunk(session, get_trunk(session, name))


def add_route(session: Session, spec: RouteSpec) -> dict[str, Any]:
    """Append ``spec``'s trunks, in order, to its prefix's trunks."""
    trunk_ids = [get_trunk(session, name).id for name in spec.trunks]
    existing = repository.routes_of_prefix(session, spec.prefix)
    known = {route.trunk_id for route in existing}
    for name, trunk_id in zip(spec.trunks, trunk_ids, strict=True):
        if trunk_id in known:
            raise Conflict(f"The route {spec.prefix} goes to trunk '{name}' already.", "trunks")
    priority = max((route.priority for route in existing), default=-1) + 1
    for offset, trunk_id in enumerate(trunk_ids):
        repository.add_route(session, spec.prefix, trunk_id, priority + offset)
    return route_of(session, spec.prefix)


def set_route(session: Session, spec: RouteSpec) -> None:
    """Make ``spec``'s trunks, in order, the whole of its prefix's route."""
    trunk_ids = [get_trunk(session, name).id for name in spec.trunks]
    repository.delete_routes(session, spec.prefix)
    for priority, trunk_id in enumerate(trunk_ids):
        repository.add_route(session, spec.prefix, trunk_id, priority)


def list_routes(session: Session) -> list[dict[str, Any]]:
    """Routes by prefix, each with its trunks in failover order."""
    routes: dict[str, list[str]] = {}
    for prefix, name, _priority in repository.route_rows(session):
        routes.setdefault(prefix, []).append(name)
    return [{"prefix": prefix, "trunks": trunks} for prefix, trunks in routes.items()]


def route_of(session: Session, prefix: str) -> dict[str, Any]:
    for route in list_routes(session):
        if route["prefix"] == prefix:
            return route
    raise NotFound(f"There is no SIP route for the prefix {prefix}.", "prefix")


def remove_route(session: Session, prefix: str, trunk: str | None = None) -> None:
    """Remove the prefix's route, or only ``trunk`` from it."""
    trunk_id = get_trunk(session, trunk).id if trunk is not None else None
    if repository.delete_routes(session, prefix, trunk_id) == 0:
        which = f" through trunk '{trunk}'" if trunk is not None else ""
        raise NotFound(f"There is no SIP route for the prefix {prefix}{which}.", "prefix")


def operator_routing(session: Session) -> tuple[list[OperatorRoute], dict[str, OperatorTrunk]]:
    """The operator's routes and trunks as the pure routing rules take them."""
    routes = [OperatorRoute(r["prefix"], tuple(r["trunks"])) for r in list_routes(session)]
    return routes, operator_trunks(session)


def operator_trunks(session: Session) -> dict[str, OperatorTrunk]:
    """The operator's trunks by name, as the pure routing rules take them."""
    return {
        trunk.name: OperatorTrunk(
            trunk.name,
            trunk.host,
            trunk.port,
            Transport(trunk.transport),
            trunk_networks(trunk.host, trunk.allowed_networks or []),
            trunk.enabled,
        )
        for trunk in repository.all_trunks(session)
    }


# The config file ------------------------------------------------------------------------------------


def _load_config(path: Path) -> tuple[list[TrunkSpec], list[RouteSpec]]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise BadRequest(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BadRequest(f"{path}: is not valid TOML ({exc}).") from exc
    unknown = sorted(set(data) - {"trunks", "routes"})
    if unknown:
        raise BadRequest(
            f"{path}: unknown section(s) {', '.join(unknown)}; expected [[trunks]] and [[routes]]."
        )
    trunks: list[TrunkSpec] = []
    routes: list[RouteSpec] = []
    for kind, model, out in (("trunks", TrunkSpec, trunks), ("routes", RouteSpec, routes)):
        for index, item in enumerate(data.get(kind, [])):
            try:
                out.append(model.model_validate(item))  # type: ignore[arg-type]
            except ValidationError as exc:
                label = item.get("name") or item.get("prefix") if isinstance(item, dict) else None
                which = f" ('{label}')" if label else ""
                raise BadRequest(f"{path}: [[{kind}]] number {index + 1}{which}: {describe(exc)}") from exc
    return trunks, routes


def apply_config_file(session: Session, path: Path) -> AppliedConfig:
    """Apply a TOML file of ``[[trunks]]`` (TrunkSpec's fields, snake_case) and ``[[routes]]``
    (``prefix``, ``trunks``): trunks are created or updated by name, each listed prefix gets
    exactly the trunks given, in that order. A carrier a trunk names that does not exist yet is
    created with kind ``sip``. Everything or nothing (the caller's transaction)."""
    trunk_specs, route_specs = _load_config(path)
    for spec in trunk_specs:
        if repository.carrier_by_name(session, spec.carrier) is None:
            repository.add_carrier(session, spec.carrier, "sip", f"created by {path.name}")
        existing = repository.trunk_by_name(session, spec.name)
        if existing is None:
            add_trunk(session, spec)
        else:
            for key, value in _trunk_values(session, spec).items():
                setattr(existing, key, value)
    for route in route_specs:
        set_route(session, route)
    return AppliedConfig(len(trunk_specs), len(route_specs))
