"""CallAutomation 2026-03-12's participant operations, the API side: ``participants:add``,
``participants:remove``, ``participants:cancelAddParticipant``, ``participants:mute`` and
``:transferToParticipant``.

Each checks the request, locks the call, writes the leg rows (gateway.calls.legs decides the
leg's state) and the callbacks that are already known in one transaction, and returns the
worker commands for the SIP process holding the call, which the router sends after the commit.
A new leg is placed in the worker of the leg it joins (``MakeCall.bridge_with``) through the
same route plan as createCall (the tenant's routes, then the operator's; failover on 5xx or a
timeout, in gateway.calls.party_events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.calls import outbound, party_callbacks, repository
from gateway.calls.connections import optional_text, phone_target, request_object
from gateway.calls.inbound import source_host
from gateway.calls.legs import LegRole, NotApplicable, Outcome, PartyEvent
from gateway.calls.lifecycle import CallState
from gateway.calls.models import Call, CallLeg
from gateway.calls.party_events import step_leg
from gateway.calls.party_legs import leg_trunk, place_leg
from gateway.core.errors import BadRequest, NotFound
from gateway.events import subscriptions
from gateway.events.ssrf import Policy
from gateway.events.subscriptions import Limits
from gateway.numbers.purchased import owned_number
from sip.worker.messages import Command, Mute, Transfer

DEFAULT_INVITATION_TIMEOUT = 60  # seconds; ACS's ceiling is 180
MAX_INVITATION_TIMEOUT = 180


@dataclass
class PartyDone:
    """What an operation answers, and the commands for the SIP process holding the call."""

    body: dict[str, Any]
    process: str
    commands: tuple[Command, ...] = field(default_factory=tuple)


def _pstn(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise BadRequest(f"{name} is required: a PSTN phone number.", name)
    try:
        return phone_target(value)
    except BadRequest as exc:
        raise BadRequest(f"{name} must be a PSTN phone number (E.164).", name) from exc


def _connected_call(session: Session, resource_id: str, call_id: str) -> Call:
    call = repository.lock_call(session, call_id, resource_id)
    if call is None or CallState(call.state) in (CallState.OFFERED, CallState.ENDED):
        raise NotFound(f"Call {call_id} not found.", "callConnectionId", "CallNotFound")
    if CallState(call.state) is not CallState.CONNECTED:
        raise BadRequest(
            f"The call is {call.state}: participants change only in a connected call.",
            "callConnectionId",
            "CallNotConnected",
        )
    return call


def _callback_subscription(
    session: Session, call: Call, body: dict[str, Any], policy: Policy, limits: Limits
) -> str | None:
    """The subscription of ``operationCallbackUri`` (the call's own callback when absent)."""
    uri = optional_text(body, "operationCallbackUri")
    if uri is None:
        return call.callback_subscription_id
    return subscriptions.callback_subscription_id(session, call.resource_id, uri, policy, limits)


def _caller_id(session: Session, call: Call, body: dict[str, Any], required: bool) -> str:
    """``sourceCallerIdNumber``, a number of the resource with outbound calling (403 if not);
    when optional and absent, the call's own number of the resource."""
    if body.get("sourceCallerIdNumber") is None and not required:
        return call.target_number if call.direction == "inbound" else call.source_number
    caller = outbound.caller_id(body)
    owned = owned_number(session, call.resource_id, caller)
    if owned is None or owned.calling not in outbound.OUTBOUND_CAPABILITIES:
        raise outbound.CallerIdNotAllowed(caller)
    return caller


def _invitation_timeout(body: dict[str, Any]) -> int:
    raw = body.get("invitationTimeoutInSeconds")
    if raw is None:
        return DEFAULT_INVITATION_TIMEOUT
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_INVITATION_TIMEOUT:
        raise BadRequest(
            "invitationTimeoutInSeconds must be a whole number of seconds from 1 to "
            f"{MAX_INVITATION_TIMEOUT}.",
            "invitationTimeoutInSeconds",
        )
    return raw


def party_of(session: Session, call: Call, number: str, field_name: str) -> CallLeg:
    """The leg of the party ``number`` in the call (404 if there is none)."""
    for leg in repository.active_legs(session, call.id):
        if leg.number == number and party_callbacks.in_call(leg):
            return leg
    raise NotFound(f"Participant 4:{number} not found in call {call.id}.", field_name, "ParticipantNotFound")


def add_participant(
    session: Session,
    resource_id: str,
    call_id: str,
    body: Any,
    policy: Policy,
    limits: Limits,
    now: datetime,
) -> PartyDone:
    body = request_object(body)
    target = _pstn(body, "participantToAdd")
    timeout = _invitation_timeout(body)
    context = optional_text(body, "operationContext")
    call = _connected_call(session, resource_id, call_id)
    caller = _caller_id(session, call, body, required=True)
    subscription = _callback_subscription(session, call, body, policy, limits)
    anchor = repository.active_leg(session, call.id)
    if anchor is None:
        raise NotFound(f"Call {call_id} not found.", "callConnectionId", "CallNotFound")
    leg, commands = place_leg(
        session, call, LegRole.PARTICIPANT, target, caller, anchor, context, subscription, timeout, now
    )
    session.flush()
    response: dict[str, Any] = {
        "participant": party_callbacks.participant_json(leg),
        "invitationId": leg.invitation_id,
    }
    if context is not None:
        response["operationContext"] = context
    return PartyDone(response, call.sip_process, commands)


def transfer(
    session: Session,
    resource_id: str,
    call_id: str,
    body: Any,
    policy: Policy,
    limits: Limits,
    now: datetime,
) -> PartyDone:
    """REFER to the transferee's carrier when its trunk takes REFER (``refer`` on the operator's
    trunk); else a new leg to the target bridged with the transferee, and the app's side of the
    call dropped once it answers."""
    body = request_object(body)
    target = _pstn(body, "targetParticipant")
    transferee_number = None if body.get("transferee") is None else _pstn(body, "transferee")
    context = optional_text(body, "operationContext")
    call = _connected_call(session, resource_id, call_id)
    caller = _caller_id(session, call, body, required=False)
    subscription = _callback_subscription(session, call, body, policy, limits)
    if transferee_number is not None:
        transferee = party_of(session, call, transferee_number, "transferee")
    else:
        found = repository.active_leg(session, call.id)
        if found is None:
            raise NotFound(f"Call {call_id} not found.", "callConnectionId", "CallNotFound")
        transferee = found
    response: dict[str, Any] = {} if context is None else {"operationContext": context}
    trunk = leg_trunk(session, call, transferee)
    if trunk is not None and repository.trunk_takes_refer(session, trunk):
        transferee.pending = {
            "kind": "refer",
            "context": context,
            "subscription": subscription,
            "target": target,
            "caller": caller,
        }
        host = source_host(transferee.remote) if transferee.remote else "invalid"
        session.flush()
        return PartyDone(response, call.sip_process, (Transfer(transferee.id, f"sip:{target}@{host}"),))
    _, commands = place_leg(
        session, call, LegRole.TRANSFER, target, caller, transferee, context, subscription,
        DEFAULT_INVITATION_TIMEOUT, now,
    )  # fmt: skip
    session.flush()
    return PartyDone(response, call.sip_process, commands)


def remove_participant(
    session: Session,
    resource_id: str,
    call_id: str,
    body: Any,
    policy: Policy,
    limits: Limits,
    now: datetime,
) -> PartyDone:
    body = request_object(body)
    number = _pstn(body, "participantToRemove")
    context = optional_text(body, "operationContext")
    call = _connected_call(session, resource_id, call_id)
    leg = party_of(session, call, number, "participantToRemove")
    parties = [other for other in repository.active_legs(session, call.id) if party_callbacks.in_call(other)]
    if len(parties) < 2:
        raise BadRequest(
            "The call's only participant cannot be removed; hang up the call instead.", "participantToRemove"
        )
    subscription = _callback_subscription(session, call, body, policy, limits)
    leg.pending = {"kind": "remove", "context": context, "subscription": subscription}
    commands = _step_app(session, call, leg, "remove", now)
    return PartyDone({} if context is None else {"operationContext": context}, call.sip_process, commands)


def cancel_add_participant(
    session: Session,
    resource_id: str,
    call_id: str,
    body: Any,
    policy: Policy,
    limits: Limits,
    now: datetime,
) -> PartyDone:
    """Cancel an invitation still ringing; one already answered or over gets
    CancelAddParticipantFailed (the request itself is accepted, as on ACS)."""
    body = request_object(body)
    invitation = body.get("invitationId")
    if not isinstance(invitation, str) or not invitation:
        raise BadRequest("invitationId is required.", "invitationId")
    context = optional_text(body, "operationContext")
    call = _connected_call(session, resource_id, call_id)
    leg = repository.leg_by_invitation(session, call.id, invitation)
    if leg is None or LegRole(leg.role) is not LegRole.PARTICIPANT:
        raise NotFound(
            f"Invitation {invitation} not found in call {call_id}.", "invitationId", "InvitationNotFound"
        )
    subscription = _callback_subscription(session, call, body, policy, limits)
    leg.pending = {"kind": "cancel", "context": context, "subscription": subscription}
    commands = _step_app(session, call, leg, "cancel", now)
    response: dict[str, Any] = {"invitationId": invitation}
    if context is not None:
        response["operationContext"] = context
    return PartyDone(response, call.sip_process, commands)


def _step_app(session: Session, call: Call, leg: CallLeg, what: str, now: datetime) -> tuple[Command, ...]:
    try:
        return step_leg(session, call, leg, what, now)
    except NotApplicable as exc:
        if what == "cancel":
            outcome = Outcome(PartyEvent.CANCEL_FAILED, 400, 8545, str(exc))
            party_callbacks.leg_outcome(session, call, leg, outcome, now)
            leg.pending = None
            return ()
        raise BadRequest(str(exc), "participantToRemove") from exc


def mute_participant(
    session: Session,
    resource_id: str,
    call_id: str,
    body: Any,
    policy: Policy,
    limits: Limits,
    now: datetime,
) -> PartyDone:
    """Mute one party: what it says reaches none of the others (the worker's ``Mute``)."""
    del policy, limits, now
    body = request_object(body)
    targets = body.get("targetParticipants")
    if not isinstance(targets, list) or len(targets) != 1:
        raise BadRequest("targetParticipants must name exactly one participant.", "targetParticipants")
    try:
        number = phone_target(targets[0])
    except BadRequest as exc:
        message = "targetParticipants must be a PSTN phone number (E.164)."
        raise BadRequest(message, "targetParticipants") from exc
    context = optional_text(body, "operationContext")
    call = _connected_call(session, resource_id, call_id)
    leg = party_of(session, call, number, "targetParticipants")
    leg.muted = True
    session.flush()
    return PartyDone(
        {} if context is None else {"operationContext": context}, call.sip_process, (Mute(leg.id, True),)
    )
