"""Placing a participant or transfer leg: the route plan (as createCall's: the tenant's routes,
then the operator's), the leg row, and the INVITE placed beside the leg it joins
(``MakeCall.bridge_with``); and which operator trunk a leg goes through (for REFER, and for the
DTMF mode a recognize on the leg listens with)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.calls import outbound, party_callbacks, repository, service, sip_routing
from gateway.calls.inbound import source_host
from gateway.calls.legs import LegRole, LegState, Outcome, PartyEvent
from gateway.calls.models import Call, CallLeg
from gateway.calls.routing import RouteSource, trunk_for_source
from sip.dtmf_mode import DtmfMode
from sip.worker.messages import Command, MakeCall

NO_ROUTE_STATUS = 404


def dial_leg(session: Session, leg: CallLeg) -> MakeCall:
    """The INVITE of a participant or transfer leg to its current destination, placed in the
    worker of the leg it joins."""
    destination = (leg.destinations or [])[leg.destination_index]
    leg.remote = f"{destination['host']}:{destination['port']}"
    password = None
    if destination.get("username") and destination.get("source") == "operator":
        trunk = repository.trunk_by_name(session, destination["trunk"])
        password = trunk.password if trunk is not None else None
    target = f"sip:{leg.number}@{destination['host']}:{destination['port']}"
    if destination.get("transport", "udp") != "udp":
        target += f";transport={destination['transport']}"
    caller = leg.source_number or ""
    return MakeCall(
        leg.id,
        target,
        f"sip:{caller}@{destination['host']}",
        username=destination.get("username"),
        password=password,
        headers=(("P-Asserted-Identity", f"<sip:{caller}@{destination['host']}>"),),
        bridge_with=leg.bridge_with or "",
    )


def leg_trunk(session: Session, call: Call, leg: CallLeg) -> str | None:
    """The operator trunk a leg goes through: the destination it was placed on, or for the
    caller of an inbound call the trunk its INVITE came from."""
    destinations = leg.destinations if LegRole(leg.role) is not LegRole.CALL else call.destinations
    index = leg.destination_index if LegRole(leg.role) is not LegRole.CALL else call.destination_index
    if destinations:
        destination = destinations[min(index, len(destinations) - 1)]
        return str(destination["trunk"]) if destination.get("source") == "operator" else None
    if not leg.remote:
        return None
    return trunk_for_source(source_host(leg.remote), service.operator_trunks(session).values()).trunk


def leg_dtmf_mode(session: Session, call: Call, leg: CallLeg) -> DtmfMode:
    """How the leg's carrier sends DTMF: its operator trunk's ``dtmf``; ``auto`` for a leg
    through a tenant's own trunk (the far end's SDP decides)."""
    trunk = leg_trunk(session, call, leg)
    mode = repository.trunk_dtmf(session, trunk) if trunk is not None else None
    return DtmfMode(mode) if mode else DtmfMode.AUTO


def place_leg(
    session: Session,
    call: Call,
    role: LegRole,
    target: str,
    caller: str,
    anchor: CallLeg,
    context: str | None,
    subscription: str | None,
    timeout: int,
    now: datetime,
) -> tuple[CallLeg, tuple[Command, ...]]:
    """A new leg to ``target`` beside ``anchor``, through the route plan; a number with no
    route fails at once (AddParticipantFailed / CallTransferFailed with 404)."""
    plan = sip_routing.outbound_plan(session, call.resource_id, target)
    destinations = []
    for destination in plan.destinations:
        username = None
        if destination.source is RouteSource.OPERATOR:
            trunk = repository.trunk_by_name(session, destination.trunk)
            username = trunk.username if trunk is not None else None
        destinations.append(outbound.destination_json(destination, username))
    leg = CallLeg(
        id=uuid.uuid4().hex,
        call_id=call.id,
        sip_process=call.sip_process,
        worker=anchor.worker,
        number=target,
        role=role.value,
        state=LegState.PLACING.value,
        invitation_id=str(uuid.uuid4()),
        operation_context=context,
        callback_subscription_id=subscription,
        source_number=caller,
        destinations=destinations,
        destination_index=0,
        invitation_deadline=now + timedelta(seconds=timeout),
        bridge_with=anchor.id,
        created_at=now,
    )
    repository.add_leg(session, leg)
    if not destinations:
        failed = PartyEvent.TRANSFER_FAILED if role is LegRole.TRANSFER else PartyEvent.ADD_FAILED
        outcome = Outcome(failed, NO_ROUTE_STATUS, 0, f"No route to {target}.", NO_ROUTE_STATUS)
        leg.state, leg.active, leg.ended_at, leg.invitation_deadline = LegState.ENDED.value, False, now, None
        party_callbacks.leg_outcome(session, call, leg, outcome, now)
        return leg, ()
    return leg, (dial_leg(session, leg),)
