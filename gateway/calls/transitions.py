"""Applying the call state machine to a call row: every writer of a call's state goes through
:func:`apply`, which asks gateway.calls.lifecycle for the change, writes it, puts the app's
callback in the outbox (same transaction) and returns the command for the SIP process holding
the call, to send once the transaction has committed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.calls import callbacks, lifecycle, repository
from gateway.calls.lifecycle import CallState, CallView, Direction, Input, SipAction, Transition
from gateway.calls.models import Call, CallLeg
from gateway.core.db import new_uuid
from gateway.events.service import publish
from sip.worker.messages import Answer, Command, Hangup, MakeCall, Redirect, Reject

REASON_PHRASES = {403: "Forbidden", 404: "Not Found", 480: "Temporarily Unavailable", 486: "Busy Here"}


@dataclass(frozen=True)
class Applied:
    """What :func:`apply` did: the transition, and the command (for ``process``) to send after
    the commit, if any."""

    transition: Transition
    process: str
    command: Command | None
    also: tuple[Command, ...] = ()  # more commands for the same process (the call's other legs)

    @property
    def commands(self) -> tuple[Command, ...]:
        return ((self.command,) if self.command is not None else ()) + self.also


def view(call: Call) -> CallView:
    left = max(0, len(call.destinations) - call.destination_index - 1)
    placed = bool(call.sip_process)
    return CallView(CallState(call.state), Direction(call.direction), call.answered, left, placed)


def ids(call: Call) -> callbacks.CallIds:
    return callbacks.CallIds(call.id, call.server_call_id, call.correlation_id)


def apply(
    session: Session,
    call: Call,
    event: Input,
    now: datetime,
    *,
    redirect_uri: str | None = None,
    legs: Sequence[CallLeg] | None = None,
) -> Applied:
    """Move ``call`` (locked by the caller) on ``event``; :class:`lifecycle.Refused` if the app's
    command does not apply. ``legs``: the call's active legs, when the caller has read them in
    this transaction already."""
    transition = lifecycle.step(view(call), event)
    if legs is None:
        legs = repository.active_legs(session, call.id)
    leg = repository.own_leg(legs)
    others = [o for o in legs if leg is None or o.id != leg.id]
    if call.state != transition.state.value:
        call.state = transition.state.value
        call.state_since = now
    if transition.state is CallState.CONNECTED and not call.answered:
        call.answered = True
        call.connected_at = now
    if transition.end_reason is not None:
        call.end_reason = transition.end_reason.value
    if transition.state is CallState.ENDED and call.ended_at is None:
        call.ended_at = now
        call.ring_deadline = None
    command = _command(session, call, leg, transition, redirect_uri, now)
    # The app hangs up, or the call ends: every other party of the call goes too (a transferred
    # call's legs stay, bridged without the app; gateway.calls.legs ends them).
    transferred = transition.end_reason is lifecycle.EndReason.TRANSFERRED
    ends = transition.state is CallState.ENDED and not transferred
    also: tuple[Command, ...] = ()
    if transition.sip is SipAction.HANGUP or ends:
        also = tuple(Hangup(other.id) for other in others)
    if ends:
        for ended in ([leg] if leg is not None else []) + others:
            repository.end_leg(ended, now)
    if transition.callback is not None and call.callback_subscription_id is not None:
        result = None
        if transition.callback is not lifecycle.Callback.CALL_CONNECTED:
            sip_status = transition.result_code if transition.result_code >= 300 else None
            result = callbacks.result_information(
                transition.result_code, transition.result_subcode, transition.result_message, sip_status
            )
        publish(
            session,
            resource_id=call.resource_id,
            event_type=callbacks.callback_type(transition.callback),
            subject=callbacks.callback_subject(call.id),
            data=callbacks.callback_data(ids(call), call.operation_context, result),
            event_time=now,
            subscription_id=call.callback_subscription_id,
            prompt=True,
        )
    session.flush()
    return Applied(transition, call.sip_process, command, also)


def _command(
    session: Session,
    call: Call,
    leg: CallLeg | None,
    transition: Transition,
    redirect_uri: str | None,
    now: datetime,
) -> Command | None:
    action = transition.sip
    if action is SipAction.DIAL_NEXT:
        if leg is not None:
            repository.end_leg(leg, now)
        call.destination_index += 1
        return dial(session, call, now)
    if action is None or leg is None:
        return None
    if action is SipAction.ANSWER:
        return Answer(leg.id)
    if action is SipAction.REJECT:
        status = transition.sip_status or 480
        return Reject(leg.id, status, REASON_PHRASES.get(status, ""))
    if action is SipAction.REDIRECT:
        assert redirect_uri is not None, "a redirect needs its target"
        return Redirect(leg.id, redirect_uri)
    return Hangup(leg.id)


def dial(session: Session, call: Call, now: datetime) -> MakeCall:
    """A new leg of an outbound call to its current destination, and the INVITE that places it."""
    destination = call.destinations[call.destination_index]
    leg = CallLeg(
        id=new_uuid().replace("-", ""),
        call_id=call.id,
        sip_process=call.sip_process,
        number=call.target_number,
        remote=f"{destination['host']}:{destination['port']}",
        created_at=now,
    )
    repository.add_leg(session, leg)
    password = None
    if destination.get("username") and destination.get("source") == "operator":
        trunk = repository.trunk_by_name(session, destination["trunk"])
        password = trunk.password if trunk is not None else None
    transport = destination.get("transport", "udp")
    target = f"sip:{call.target_number}@{destination['host']}:{destination['port']}"
    if transport != "udp":
        target += f";transport={transport}"
    return MakeCall(
        leg.id,
        target,
        f"sip:{call.source_number}@{destination['host']}",
        display_name=call.caller_display_name,
        username=destination.get("username"),
        password=password,
        headers=(("P-Asserted-Identity", f"<sip:{call.source_number}@{destination['host']}>"),),
    )
