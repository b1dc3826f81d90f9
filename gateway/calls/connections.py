"""CallAutomation 2026-03-12's call connections, the API side: answer, reject and redirect an
incoming call by its context; read, hang up and terminate a call; its participants.

Each command checks the request, locks the call row, moves it through transitions.py (the
lifecycle decides) and returns the worker command that the router publishes to the SIP process
holding the call once the transaction has committed. Errors are ACS's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.calls import context, repository, transitions
from gateway.calls.inbound import number_of
from gateway.calls.lifecycle import (
    AppAnswer,
    AppHangup,
    AppRedirect,
    AppReject,
    CallState,
    Refusal,
    Refused,
    RejectReason,
    connection_state,
)
from gateway.calls.models import Call
from gateway.core.errors import AcsError, BadRequest, Conflict, NotFound
from gateway.events import subscriptions
from gateway.events.builder import phone_identifier
from gateway.events.ssrf import Policy
from gateway.events.subscriptions import Limits
from gateway.identity.tokens import SigningKey


@dataclass(frozen=True)
class Keys:
    """What checking an incomingCallContext needs."""

    keys: list[SigningKey]
    issuer: str


@dataclass(frozen=True)
class Done:
    """A command's result: the call after it, and what to send to which SIP process."""

    call: Call
    applied: transitions.Applied


def required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} is required and must be a string.", name, "BadRequest")
    return value


def optional_text(body: dict[str, Any], name: str) -> str | None:
    return None if body.get(name) is None else required_text(body, name)


def request_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _refused(exc: Refused) -> AcsError:
    if exc.refusal is Refusal.NOT_FOUND:
        return NotFound(exc.message, code="CallNotFound")
    return Conflict(exc.message, code="CallStateConflict")


def _offered_call(session: Session, keys: Keys, resource_id: str, token: str, now: datetime) -> Call:
    """The call an incomingCallContext names, locked; 404 for anything not this resource's
    ringing call (expired, forged, another tenant's), 409 for one no longer ringing."""
    try:
        named = context.verify(token, keys.keys, keys.issuer, now)
    except context.ExpiredContext as exc:
        raise NotFound(
            "The incoming call is no longer available.", "incomingCallContext", "CallNotFound"
        ) from exc
    except context.InvalidContext as exc:
        raise BadRequest(
            f"The incomingCallContext is not valid: {exc}",
            "incomingCallContext",
            "InvalidIncomingCallContext",
        ) from exc
    call = (
        repository.lock_call(session, named.call_id, resource_id)
        if named.resource_id == resource_id
        else None
    )
    if call is None:
        raise NotFound("The incoming call is not available.", "incomingCallContext", "CallNotFound")
    return call


def answer(
    session: Session,
    keys: Keys,
    resource_id: str,
    body: Any,
    policy: Policy,
    limits: Limits,
    now: datetime,
) -> Done:
    body = request_object(body)
    token = required_text(body, "incomingCallContext")
    callback_uri = required_text(body, "callbackUri")
    operation_context = optional_text(body, "operationContext")
    call = _offered_call(session, keys, resource_id, token, now)
    if CallState(call.state) is not CallState.OFFERED:
        raise _refused(Refused(Refusal.CONFLICT, f"The call was already {call.state}."))
    subscription_id = subscriptions.callback_subscription_id(
        session, resource_id, callback_uri, policy, limits
    )
    call.callback_uri = callback_uri
    call.callback_subscription_id = subscription_id
    call.operation_context = operation_context
    return Done(call, _apply(session, call, AppAnswer(), now))


def reject(session: Session, keys: Keys, resource_id: str, body: Any, now: datetime) -> Done:
    body = request_object(body)
    token = required_text(body, "incomingCallContext")
    raw_reason = body.get("callRejectReason", RejectReason.NONE.value)
    try:
        reason = RejectReason(raw_reason)
    except ValueError as exc:
        raise BadRequest("callRejectReason must be none, busy or forbidden.", "callRejectReason") from exc
    call = _offered_call(session, keys, resource_id, token, now)
    return Done(call, _apply(session, call, AppReject(reason), now))


def redirect(session: Session, keys: Keys, resource_id: str, body: Any, now: datetime) -> Done:
    """A 302 to the carrier the call came from, with the target number as Contact: the carrier
    places the new call itself, so no worker slot or media is held for it (an outbound leg
    bridged in would keep two legs and the audio in this gateway for the whole call)."""
    body = request_object(body)
    token = required_text(body, "incomingCallContext")
    target = body.get("target")
    number = phone_target(target)
    call = _offered_call(session, keys, resource_id, token, now)
    leg = repository.active_leg(session, call.id)
    host = leg.remote if leg is not None and leg.remote else "invalid"
    return Done(call, _apply(session, call, AppRedirect(number), now, redirect_uri=f"sip:{number}@{host}"))


def phone_target(target: Any) -> str:
    if isinstance(target, dict):
        phone = target.get("phoneNumber")
        raw = target.get("rawId")
        value = phone.get("value") if isinstance(phone, dict) else None
        if not value and isinstance(raw, str) and raw.startswith("4:"):
            value = raw[2:]
        if isinstance(value, str) and number_of(f"tel:{value}") == value:
            return value
    raise BadRequest("target must be a PSTN phone number (E.164).", "target", "BadRequest")


def _apply(session: Session, call: Call, event: Any, now: datetime, **options: Any) -> transitions.Applied:
    try:
        return transitions.apply(session, call, event, now, **options)
    except Refused as exc:
        raise _refused(exc) from exc


def get_call(session: Session, resource_id: str, call_id: str) -> Call:
    call = repository.find_call(session, call_id, resource_id)
    if call is None or CallState(call.state) is CallState.OFFERED:
        raise NotFound(f"Call {call_id} not found.", "callConnectionId", "CallNotFound")
    return call


def hang_up(session: Session, resource_id: str, call_id: str, now: datetime) -> Done:
    """DELETE (hang up) and :terminate: with one PSTN party either way the call ends."""
    call = repository.lock_call(session, call_id, resource_id)
    if call is None or CallState(call.state) is CallState.OFFERED:
        raise NotFound(f"Call {call_id} not found.", "callConnectionId", "CallNotFound")
    return Done(call, _apply(session, call, AppHangup(), now))


def properties(call: Call) -> dict[str, Any]:
    """CallConnectionProperties."""
    inbound = call.direction == "inbound"
    data: dict[str, Any] = {
        "callConnectionId": call.id,
        "serverCallId": call.server_call_id,
        "correlationId": call.correlation_id,
        "callConnectionState": connection_state(CallState(call.state)),
        "targets": [phone_identifier(call.source_number if inbound else call.target_number)],
        "source": phone_identifier(call.target_number if inbound else call.source_number),
    }
    if call.callback_uri is not None:
        data["callbackUri"] = call.callback_uri
    if inbound:
        data["answeredFor"] = {"value": call.target_number}
    else:
        data["sourceCallerIdNumber"] = {"value": call.source_number}
        if call.caller_display_name:
            data["sourceDisplayName"] = call.caller_display_name
    return data


def participant(participants: list[dict[str, Any]], call_id: str, raw_id: str) -> dict[str, Any]:
    """One of the call's participants (gateway.calls.party_callbacks.participants), by raw id."""
    for item in participants:
        if item["identifier"]["rawId"] == raw_id:
            return item
    raise NotFound(
        f"Participant {raw_id} not found in call {call_id}.", "participantRawId", "ParticipantNotFound"
    )
