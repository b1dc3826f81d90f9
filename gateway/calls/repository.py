"""SQL of the calls domain's routing: the operator's trunks and routes, and each tenant's SIP
configuration (read whole, written whole)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from gateway.calls.models import SipRoute, SipTrunk, TenantSipRoute, TenantSipTrunk
from gateway.calls.sip_configuration import Route, SipConfiguration, Trunk
from gateway.numbers.models import Carrier
from gateway.resources.models import Resource

# Operator: carriers, trunks, routes ---------------------------------------------------------------


def carrier_by_name(session: Session, name: str) -> Carrier | None:
    return session.scalar(select(Carrier).where(Carrier.name == name))


def add_carrier(session: Session, name: str, kind: str, notes: str) -> Carrier:
    carrier = Carrier(name=name, kind=kind, notes=notes)
    session.add(carrier)
    session.flush()
    return carrier


def trunk_by_name(session: Session, name: str) -> SipTrunk | None:
    return session.scalar(select(SipTrunk).where(SipTrunk.name == name))


def trunks_with_carriers(session: Session) -> list[tuple[SipTrunk, str]]:
    rows = session.execute(
        select(SipTrunk, Carrier.name)
        .join(Carrier, Carrier.id == SipTrunk.carrier_id)
        .order_by(SipTrunk.name)
    ).all()
    return [(trunk, carrier) for trunk, carrier in rows]


def carrier_name(session: Session, carrier_id: str) -> str:
    return session.scalar(select(Carrier.name).where(Carrier.id == carrier_id)) or ""


def add_trunk(session: Session, values: dict[str, Any]) -> SipTrunk:
    trunk = SipTrunk(**values)
    session.add(trunk)
    session.flush()
    return trunk


def delete_trunk(session: Session, trunk: SipTrunk) -> None:
    session.execute(delete(SipRoute).where(SipRoute.trunk_id == trunk.id))
    session.delete(trunk)
    session.flush()


def route_rows(session: Session) -> list[tuple[str, str, int]]:
    """(prefix, trunk name, priority) of every route, by prefix and priority."""
    rows = session.execute(
        select(SipRoute.prefix, SipTrunk.name, SipRoute.priority)
        .join(SipTrunk, SipTrunk.id == SipRoute.trunk_id)
        .order_by(SipRoute.prefix, SipRoute.priority, SipTrunk.name)
    ).all()
    return [(prefix, name, priority) for prefix, name, priority in rows]


def routes_of_prefix(session: Session, prefix: str) -> list[SipRoute]:
    return list(
        session.scalars(select(SipRoute).where(SipRoute.prefix == prefix).order_by(SipRoute.priority))
    )


def add_route(session: Session, prefix: str, trunk_id: str, priority: int) -> None:
    session.add(SipRoute(prefix=prefix, trunk_id=trunk_id, priority=priority))
    session.flush()


def delete_routes(session: Session, prefix: str, trunk_id: str | None = None) -> int:
    statement = delete(SipRoute).where(SipRoute.prefix == prefix)
    if trunk_id is not None:
        statement = statement.where(SipRoute.trunk_id == trunk_id)
    result = session.execute(statement)
    return int(getattr(result, "rowcount", 0))


# Tenant: the SipRouting configuration ---------------------------------------------------------------


def lock_resource(session: Session, resource_id: str) -> None:
    """Serialise PATCHes of one resource's configuration (a row lock on PostgreSQL; SQLite's
    writers are serialised already)."""
    session.execute(select(Resource.id).where(Resource.id == resource_id).with_for_update())


def tenant_configuration(session: Session, resource_id: str) -> SipConfiguration:
    trunks = {
        row.fqdn: Trunk(row.fqdn, row.sip_signaling_port, row.enabled)
        for row in session.scalars(
            select(TenantSipTrunk)
            .where(TenantSipTrunk.resource_id == resource_id)
            .order_by(TenantSipTrunk.fqdn)
        )
    }
    routes = tuple(
        Route(row.name, row.number_pattern, tuple(row.trunks or ()), row.description)
        for row in session.scalars(
            select(TenantSipRoute)
            .where(TenantSipRoute.resource_id == resource_id)
            .order_by(TenantSipRoute.position)
        )
    )
    return SipConfiguration(trunks, routes)


def save_tenant_configuration(
    session: Session, resource_id: str, before: SipConfiguration, after: SipConfiguration
) -> None:
    """Write the difference between ``before`` (as read in this transaction) and ``after``."""
    gone = [fqdn for fqdn in before.trunks if fqdn not in after.trunks]
    if gone:
        session.execute(
            delete(TenantSipTrunk).where(
                TenantSipTrunk.resource_id == resource_id, TenantSipTrunk.fqdn.in_(gone)
            )
        )
    for fqdn, trunk in after.trunks.items():
        old = before.trunks.get(fqdn)
        if old == trunk:
            continue
        if old is None:
            session.execute(
                insert(TenantSipTrunk).values(
                    resource_id=resource_id,
                    fqdn=fqdn,
                    sip_signaling_port=trunk.sip_signaling_port,
                    enabled=trunk.enabled,
                )
            )
        else:
            row = session.get(TenantSipTrunk, (resource_id, fqdn))
            if row is not None:
                row.sip_signaling_port = trunk.sip_signaling_port
                row.enabled = trunk.enabled
    if before.routes != after.routes:
        session.execute(delete(TenantSipRoute).where(TenantSipRoute.resource_id == resource_id))
        if after.routes:
            session.execute(
                insert(TenantSipRoute),
                [
                    {
                        "resource_id": resource_id,
                        "position": position,
                        "name": route.name,
                        "description": route.description,
                        "number_pattern": route.number_pattern,
                        "trunks": list(route.trunks),
                    }
                    for position, route in enumerate(after.routes)
                ],
            )
    session.flush()


def all_trunks(session: Session) -> Sequence[SipTrunk]:
    return list(session.scalars(select(SipTrunk).order_by(SipTrunk.name)))
