"""The callbacks of participant operations, put in the outbox with the change that causes them:
the data of each event (CallAutomation 2026-03-12's definitions, checked against the official
SDK's models in tests) and the participants list ParticipantsUpdated and ``GET .../participants``
share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.calls import callbacks, repository
from gateway.calls.legs import PARTICIPANTS_CHANGED, LegRole, LegState, Outcome, PartyEvent
from gateway.calls.lifecycle import CallState
from gateway.calls.models import Call, CallLeg
from gateway.events.builder import phone_identifier
from gateway.events.service import publish


def in_call(leg: CallLeg) -> bool:
    """Whether the leg's party is in the call (answered and not gone)."""
    if not leg.active:
        return False
    if LegRole(leg.role) is LegRole.CALL:
        return True
    return leg.state in (LegState.CONNECTED.value, LegState.REMOVING.value)


def participant_json(leg: CallLeg) -> dict[str, Any]:
    """CallParticipant."""
    return {"identifier": phone_identifier(leg.number), "isMuted": leg.muted, "isOnHold": False}


def participants(session: Session, call: Call) -> list[dict[str, Any]]:
    """The call's PSTN parties in the call now (the app's own side is not a participant)."""
    if CallState(call.state) is CallState.ENDED:
        return []
    return [participant_json(leg) for leg in repository.active_legs(session, call.id) if in_call(leg)]


def _ids(call: Call) -> callbacks.CallIds:
    return callbacks.CallIds(call.id, call.server_call_id, call.correlation_id)


def send(
    session: Session,
    call: Call,
    outcome: Outcome,
    now: datetime,
    *,
    subscription_id: str | None,
    operation_context: str | None,
    extra: dict[str, Any] | None = None,
) -> None:
    """One callback to the operation's callback URI (``operationCallbackUri`` or the call's)."""
    subscription = subscription_id or call.callback_subscription_id
    if subscription is None:
        return
    result = callbacks.result_information(outcome.code, outcome.subcode, outcome.message, outcome.sip_status)
    data = callbacks.callback_data(_ids(call), operation_context, result)
    data.update(extra or {})
    publish(
        session,
        resource_id=call.resource_id,
        event_type=callbacks.EVENT_PREFIX + outcome.event.value,
        subject=callbacks.callback_subject(call.id),
        data=data,
        event_time=now,
        subscription_id=subscription,
        prompt=True,
    )


def leg_outcome(session: Session, call: Call, leg: CallLeg, outcome: Outcome, now: datetime) -> None:
    """An outcome of the operation on ``leg``, with what its event names."""
    pending = leg.pending or {}
    subscription, context = leg.callback_subscription_id, leg.operation_context
    extra: dict[str, Any] = {}
    event = outcome.event
    if event in (PartyEvent.CANCEL_SUCCEEDED, PartyEvent.CANCEL_FAILED):
        subscription, context = pending.get("subscription"), pending.get("context")
        extra["invitationId"] = leg.invitation_id
    elif event in (PartyEvent.REMOVE_SUCCEEDED, PartyEvent.REMOVE_FAILED):
        subscription, context = pending.get("subscription"), pending.get("context")
        extra["participant"] = phone_identifier(leg.number)
    elif event is PartyEvent.TRANSFER_ACCEPTED:
        if pending.get("kind") == "refer":
            subscription, context = pending.get("subscription"), pending.get("context")
            extra["transferTarget"] = phone_identifier(pending.get("target", ""))
            extra["transferee"] = phone_identifier(leg.number)
        else:
            extra["transferTarget"] = phone_identifier(leg.number)
            transferee = repository.leg(session, leg.bridge_with or "")
            if transferee is not None:
                extra["transferee"] = phone_identifier(transferee.number)
    elif event is PartyEvent.TRANSFER_FAILED and pending.get("kind") == "refer":
        subscription, context = pending.get("subscription"), pending.get("context")
    elif event in (PartyEvent.ADD_SUCCEEDED, PartyEvent.ADD_FAILED):
        extra["participant"] = phone_identifier(leg.number)
    send(session, call, outcome, now, subscription_id=subscription, operation_context=context, extra=extra)


def participants_updated(session: Session, call: Call, now: datetime) -> None:
    """ParticipantsUpdated with the call's parties now and the next sequence number."""
    call.participants_sequence += 1
    outcome = Outcome(PartyEvent.PARTICIPANTS_UPDATED, *PARTICIPANTS_CHANGED)
    extra = {"participants": participants(session, call), "sequenceNumber": call.participants_sequence}
    send(session, call, outcome, now, subscription_id=None, operation_context=None, extra=extra)
