"""SQL of the calls domain: the operator's trunks and routes, each tenant's SIP configuration
(read whole, written whole), and the calls and their SIP legs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from gateway.calls.models import Call, CallLeg, SipRoute, SipTrunk, TenantSipRoute, TenantSipTrunk
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


# Calls and legs -----------------------------------------------------------------------------------


def add_call(session: Session, call: Call, leg: CallLeg | None) -> None:
    session.add(call)
    session.flush()
    if leg is not None:
        session.add(leg)
        session.flush()


def add_leg(session: Session, leg: CallLeg) -> None:
    session.add(leg)
    session.flush()


def lock_call(session: Session, call_id: str, resource_id: str | None = None) -> Call | None:
    """The call, locked for its state change (scoped to ``resource_id`` when given)."""
    query = select(Call).where(Call.id == call_id)
    if resource_id is not None:
        query = query.where(Call.resource_id == resource_id)
    return session.scalar(query.with_for_update())


def find_call(session: Session, call_id: str, resource_id: str) -> Call | None:
    return session.scalar(select(Call).where(Call.id == call_id, Call.resource_id == resource_id))


def leg(session: Session, leg_id: str) -> CallLeg | None:
    return session.get(CallLeg, leg_id)


def active_leg(session: Session, call_id: str) -> CallLeg | None:
    """The call's own leg while it lives (the newest attempt of an outbound call); else the
    oldest party still there."""
    return session.scalar(
        select(CallLeg)
        .where(CallLeg.call_id == call_id, CallLeg.active.is_(True))
        .order_by((CallLeg.role == "call").desc(), CallLeg.created_at.desc())
        .limit(1)
    )


def active_legs(session: Session, call_id: str) -> list[CallLeg]:
    return list(
        session.scalars(
            select(CallLeg)
            .where(CallLeg.call_id == call_id, CallLeg.active.is_(True))
            .order_by(CallLeg.created_at)
        )
    )


def lock_leg(session: Session, leg_id: str) -> CallLeg | None:
    return session.scalar(select(CallLeg).where(CallLeg.id == leg_id).with_for_update())


def leg_by_invitation(session: Session, call_id: str, invitation_id: str) -> CallLeg | None:
    return session.scalar(
        select(CallLeg).where(CallLeg.call_id == call_id, CallLeg.invitation_id == invitation_id)
    )


def invitations_due(session: Session, sip_process: str, now: datetime) -> list[str]:
    """Ids of the process's placing participant legs whose invitation timeout has passed."""
    return list(
        session.scalars(
            select(CallLeg.id).where(
                CallLeg.sip_process == sip_process,
                CallLeg.state == "placing",
                CallLeg.invitation_deadline.is_not(None),
                CallLeg.invitation_deadline <= now,
            )
        )
    )


def trunk_takes_refer(session: Session, name: str) -> bool:
    return bool(session.scalar(select(SipTrunk.refer).where(SipTrunk.name == name)))


def legs_of(session: Session, call_id: str) -> list[CallLeg]:
    return list(
        session.scalars(select(CallLeg).where(CallLeg.call_id == call_id).order_by(CallLeg.created_at))
    )


def end_leg(session: Session, leg_id: str, now: datetime) -> None:
    session.execute(update(CallLeg).where(CallLeg.id == leg_id).values(active=False, ended_at=now))


def place_leg(session: Session, leg_id: str, sip_process: str, worker: int | None) -> None:
    """Record which SIP process and worker took an outbound leg (and so its call). The call row
    first: every writer locks a call before its legs (no deadlock with a participant operation)."""
    session.execute(
        update(Call)
        .where(Call.id == select(CallLeg.call_id).where(CallLeg.id == leg_id).scalar_subquery())
        .values(sip_process=sip_process)
    )
    session.execute(
        update(CallLeg).where(CallLeg.id == leg_id).values(sip_process=sip_process, worker=worker)
    )


def rings_due(session: Session, sip_process: str, now: datetime, state: str) -> list[str]:
    """Ids of the process's calls in ``state`` whose ring deadline has passed."""
    return list(
        session.scalars(
            select(Call.id).where(
                Call.sip_process == sip_process,
                Call.state == state,
                Call.ring_deadline.is_not(None),
                Call.ring_deadline <= now,
            )
        )
    )
