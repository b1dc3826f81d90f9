"""The operator's SMPP connections and the routes that send each destination prefix through
them: the admin API's and CLI's rules, and ``trunkline up``'s carrier config file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import ValidationError
from sqlalchemy.orm import Session

from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.sms.models import SmppConnection, SmppRoute
from gateway.sms.repository import connections as repository
from gateway.sms.schemas import ConnectionCreate, RouteCreate


class AppliedConfig(NamedTuple):
    """What a carrier config file changed: connections created or updated, routes added."""

    connections: int
    routes: int


def connection_json(connection: SmppConnection) -> dict[str, Any]:
    return {
        "id": connection.id,
        "name": connection.name,
        "host": connection.host,
        "port": connection.port,
        "tls": connection.tls,
        "systemId": connection.system_id,
        "systemType": connection.system_type,
        "bindMode": connection.bind_mode,
        "sourceTon": connection.source_ton,
        "sourceNpi": connection.source_npi,
        "destTon": connection.dest_ton,
        "destNpi": connection.dest_npi,
        "windowSize": connection.window_size,
        "maxSubmitsPerSecond": connection.max_submits_per_second,
        "enquireLinkInterval": connection.enquire_link_interval,
        "reconnectBackoffInitial": connection.reconnect_backoff_initial,
        "reconnectBackoffMax": connection.reconnect_backoff_max,
        "defaultDataCoding": connection.default_data_coding,
        "respIdFormat": connection.resp_id_format,
        "receiptIdFormat": connection.receipt_id_format,
        "enabled": connection.enabled,
    }


def add_connection(session: Session, spec: ConnectionCreate) -> SmppConnection:
    if repository.connection_named(session, spec.name) is not None:
        raise Conflict(f"An SMPP connection named '{spec.name}' exists already.", "name")
    connection = SmppConnection(**spec.model_dump(by_alias=False))
    repository.add(session, connection)
    return connection


def list_connections(session: Session) -> list[SmppConnection]:
    return repository.all_connections(session)


def get_connection(session: Session, name: str) -> SmppConnection:
    connection = repository.connection_named(session, name)
    if connection is None:
        raise NotFound(f"No SMPP connection named '{name}'.", "name")
    return connection


def delete_connection(session: Session, name: str) -> None:
    repository.delete(session, get_connection(session, name))


def add_route(session: Session, spec: RouteCreate) -> SmppRoute:
    """Route ``spec.prefix`` through a connection too; by default after the prefix's other routes."""
    connection = get_connection(session, spec.connection)
    existing = repository.routes_of_prefix(session, spec.prefix)
    if any(r.connection_id == connection.id for r in existing):
        raise Conflict(f"The route {spec.prefix} -> {spec.connection} exists already.", "prefix")
    priority = spec.priority if spec.priority is not None else len(existing)
    route = SmppRoute(prefix=spec.prefix, connection_id=connection.id, priority=priority)
    repository.add(session, route)
    return route


def list_routes(session: Session) -> list[dict[str, Any]]:
    return [
        {"prefix": r.prefix, "connection": name, "priority": r.priority}
        for r, name in repository.routes_with_connection_names(session)
    ]


def apply_config_file(session: Session, path: Path) -> AppliedConfig:
    """Create or update the connections and add the routes of a TOML file (``trunkline up``'s
    carrier config): ``[[connections]]`` tables with ConnectionCreate's fields (snake_case) and
    ``[[routes]]`` tables with ``prefix`` and ``connection``."""
    try:
        data = tomllib.loads(path.read_text())
        connections = [ConnectionCreate.model_validate(item) for item in data.get("connections", [])]
        routes = [RouteCreate.model_validate(item) for item in data.get("routes", [])]
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise BadRequest(f"{path}: {exc}") from exc
    for spec in connections:
        existing = repository.connection_named(session, spec.name)
        if existing is None:
            add_connection(session, spec)
        else:
            for key, value in spec.model_dump(by_alias=False).items():
                setattr(existing, key, value)
    session.flush()
    added = 0
    for route in routes:
        connection = get_connection(session, route.connection)
        if repository.route_of(session, route.prefix, connection.id) is None:
            add_route(session, route)
            added += 1
    return AppliedConfig(len(connections), added)
