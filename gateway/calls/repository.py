"""SQL of the calls domain: the operator's trunks and routes, each tenant's SIP configuration
(read whole, written whole), and the calls and their SIP legs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from gateway.calls.models import (
    Call,
    CallLeg,
    SipProcess,
    SipRoute,
    SipTrunk,
    TenantSipRoute,
    TenantSipTrunk,
)
from gateway.calls.sip_configuration import Route, SipConfiguration, Trunk
from gateway.core.db import text_literal
from gateway.numbers.models import Carrier
from gateway.resources.models import Resource

# The partial indexes' conditions (models.LIVE_CALL, models.PLACING_LEG) as literals, so that
# the generic plan of a prepared statement can use the index (tests/gateway/calls/test_plans.py).
LIVE = Call.state != text_literal("ended")
PLACING = CallLeg.state == text_literal("placing")

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


def trunks_to_register(session: Session) -> list[SipTrunk]:
    """Enabled trunks with ``register`` set and credentials to register with."""
    return list(
        session.scalars(
            select(SipTrunk)
            .where(SipTrunk.register.is_(True), SipTrunk.enabled.is_(True), SipTrunk.username.is_not(None))
            .order_by(SipTrunk.name)
        )
    )


def set_registration(
    session: Session,
    trunk: str,
    state: str | None,
    status: int | None,
    reason: str | None,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    session.execute(
        update(SipTrunk)
        .where(SipTrunk.name == trunk)
        .values(
            registration_state=state,
            registration_status=status,
            registration_reason=reason,
            registration_expires_at=expires_at,
            registration_updated_at=now,
        )
    )


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


# Built once: the SIP controller runs it for every leg event.
_LOCK_CALL_OF_LEG = (
    select(Call)
    .join(CallLeg, CallLeg.call_id == Call.id)
    .where(CallLeg.id == bindparam("leg_id"))
    .with_for_update(of=Call)
)


def lock_call_of_leg(session: Session, leg_id: str) -> Call | None:
    """The call a leg belongs to, locked for its state change (one statement for the leg's
    lookup and the lock)."""
    return session.scalar(_LOCK_CALL_OF_LEG, {"leg_id": leg_id})


def active_leg(session: Session, call_id: str) -> CallLeg | None:
    """The call's own leg while it lives (the newest attempt of an outbound call); else the
    oldest party still there."""
    return session.scalar(
        select(CallLeg)
        .where(CallLeg.call_id == call_id, CallLeg.active.is_(True))
        .order_by((CallLeg.role == "call").desc(), CallLeg.created_at.desc())
        .limit(1)
    )


def own_leg(legs: Sequence[CallLeg]) -> CallLeg | None:
    """:func:`active_leg` among ``legs`` (a call's active legs, already read): the call's own
    leg, the newest attempt first; else the newest party."""
    return max(legs, key=lambda leg: (leg.role == "call", leg.created_at), default=None)


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
                PLACING,
                CallLeg.sip_process == sip_process,
                CallLeg.invitation_deadline.is_not(None),
                CallLeg.invitation_deadline <= now,
            )
        )
    )


def trunk_takes_refer(session: Session, name: str) -> bool:
    return bool(session.scalar(select(SipTrunk.refer).where(SipTrunk.name == name)))


def trunk_dtmf(session: Session, name: str) -> str | None:
    """The trunk's DTMF mode (sip.dtmf_mode.DtmfMode's value), None for no such trunk."""
    return session.scalar(select(SipTrunk.dtmf).where(SipTrunk.name == name))


def legs_of(session: Session, call_id: str) -> list[CallLeg]:
    return list(
        session.scalars(select(CallLeg).where(CallLeg.call_id == call_id).order_by(CallLeg.created_at))
    )


def end_leg(leg: CallLeg, now: datetime) -> None:
    """The leg is over: written with the transaction's flush. On the loaded object, not by an
    UPDATE statement: the ORM's bulk UPDATE (its statement and cache key built anew, the session
    searched to keep objects in step) was an eighth of the SIP process's CPU at 20 calls/s."""
    leg.active = False
    leg.ended_at = now


def rings_due(session: Session, sip_process: str, now: datetime, state: str) -> list[str]:
    """Ids of the process's calls in ``state`` whose ring deadline has passed."""
    return list(
        session.scalars(
            select(Call.id).where(
                LIVE,
                Call.sip_process == sip_process,
                Call.state == state,
                Call.ring_deadline.is_not(None),
                Call.ring_deadline <= now,
            )
        )
    )


def claim_placement(session: Session, leg_id: str, sip_process: str) -> bool:
    """Take an outbound leg's INVITE for ``sip_process``: only while the leg is active and its
    call is not over, and either this process holds the call already (the plan's next
    destination, another leg of its call) or nobody does and the call is still dialing (its
    first INVITE). The call row is locked first and stays locked until the caller commits, so a
    hang-up or a place timeout serialises with the claim."""
    leg = session.get(CallLeg, leg_id)
    if leg is None or not leg.active:
        return False
    call = lock_call(session, leg.call_id)
    if call is None or call.state == "ended":
        return False
    first = call.sip_process == "" and call.state == "dialing"
    if not first and call.sip_process != sip_process:
        return False
    call.sip_process = sip_process
    leg.sip_process = sip_process
    session.flush()
    return True


def set_leg_worker(session: Session, leg_id: str, worker: int | None) -> None:
    session.execute(update(CallLeg).where(CallLeg.id == leg_id).values(worker=worker))


# SIP processes' heartbeats and the sweeper's queries ---------------------------------------------


def beat(session: Session, process: str, host: str, pid: int, now: datetime) -> None:
    """Refresh (or write the first) heartbeat of ``process``."""
    row = session.get(SipProcess, process)
    if row is None:
        session.add(SipProcess(id=process, host=host, pid=pid, started_at=now, heartbeat_at=now))
    else:
        row.heartbeat_at = now
    session.flush()


def stop_process(session: Session, process: str, now: datetime) -> None:
    session.execute(update(SipProcess).where(SipProcess.id == process).values(stopped_at=now))


def sip_processes(session: Session) -> list[SipProcess]:
    return list(session.scalars(select(SipProcess).order_by(SipProcess.started_at)))


def calls_of_lost_processes(session: Session, silent_since: datetime, limit: int) -> list[tuple[str, str]]:
    """(call id, process) of live calls held by a SIP process that stopped, or whose last
    heartbeat is older than ``silent_since``, or that never wrote one."""
    alive = exists().where(
        SipProcess.id == Call.sip_process,
        SipProcess.stopped_at.is_(None),
        SipProcess.heartbeat_at > silent_since,
    )
    # In ix_calls_live's order: with no statistics the planner takes most calls for live, and a
    # sequential scan looks like the quick way to the first ``limit``; it is not when none is.
    rows = session.execute(
        select(Call.id, Call.sip_process)
        .where(LIVE, Call.sip_process != "", ~alive)
        .order_by(Call.sip_process)
        .limit(limit)
    ).all()
    return [(call_id, process) for call_id, process in rows]


def unplaced_calls_due(session: Session, since: datetime, limit: int) -> list[str]:
    """Outbound calls still dialing that no SIP process took, dialing since before ``since``."""
    return list(
        session.scalars(
            select(Call.id)
            .where(LIVE, Call.state == "dialing", Call.sip_process == "", Call.state_since <= since)
            .limit(limit)
        )
    )


def calls_stuck_since(session: Session, states: Sequence[str], since: datetime, limit: int) -> list[str]:
    """Calls in one of ``states`` since before ``since``."""
    return list(
        session.scalars(
            select(Call.id).where(LIVE, Call.state.in_(list(states)), Call.state_since <= since).limit(limit)
        )
    )


def purge_processes(session: Session, before: datetime) -> int:
    """Forget processes silent since before ``before`` that hold no live call."""
    holds = exists().where(Call.sip_process == SipProcess.id, LIVE)
    result = session.execute(
        delete(SipProcess)
        .where(SipProcess.heartbeat_at < before, ~holds)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))
