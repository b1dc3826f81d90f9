"""Applying gateway.calls.legs to leg rows: the SIP process's news about the legs of a call with
several parties (answered, ended, invitation timeouts, a REFER's NOTIFYs) and the app's remove
and cancel. Each change writes the leg, puts its callbacks in the outbox and returns the worker
commands to send after the commit; a change that ends the call goes through transitions.apply
(the call's lifecycle stays the one owner of the call's state)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.calls import party_callbacks, repository, transitions
from gateway.calls.legs import (
    Answered,
    AppCancel,
    AppRemove,
    Ended,
    InvitationTimedOut,
    LegAction,
    LegRole,
    LegState,
    LegTransition,
    LegView,
    Owner,
    PartyEvent,
    route,
    step,
    transfer_progress,
    transferred_leg_left,
)
from gateway.calls.lifecycle import CallState, LegConnected, LegEnded, Transferred
from gateway.calls.models import Call, CallLeg
from gateway.calls.party_legs import dial_leg, place_leg
from sip.worker.messages import Bridge, Command, Hangup

log = logging.getLogger("trunkline.calls.parties")

REFER_UNSUPPORTED = frozenset({405, 501})  # the carrier takes no REFER: a new leg instead
TRANSFER_RING_SECONDS = 60  # how long a transfer's new leg may ring


def _view(leg: CallLeg) -> LegView:
    left = max(0, len(leg.destinations or []) - leg.destination_index - 1)
    return LegView(LegRole(leg.role), LegState(leg.state or LegState.CONNECTED.value), left)


def _end(leg: CallLeg, now: datetime) -> None:
    leg.active, leg.ended_at, leg.invitation_deadline = False, now, None


def _commands(
    session: Session, call: Call, leg: CallLeg, transition: LegTransition, now: datetime
) -> list[Command]:
    commands: list[Command] = []
    if transition.action is LegAction.HANGUP:
        commands.append(Hangup(leg.id))
    elif transition.action is LegAction.DIAL_NEXT:
        leg.destination_index += 1
        commands.append(dial_leg(session, leg))
    elif transition.action is LegAction.HANGUP_OTHERS:
        for other in repository.active_legs(session, call.id):
            if other.id != leg.id:
                _end(other, now)
                commands.append(Hangup(other.id))
    if transition.state is LegState.CONNECTED and transition.participants_changed:
        # bridge_with joined it to one party; a conference hears every party
        for other in repository.active_legs(session, call.id):
            if other.id not in (leg.id, leg.bridge_with) and party_callbacks.in_call(other):
                commands.append(Bridge(leg.id, other.id))
    return commands


def apply_leg(
    session: Session, call: Call, leg: CallLeg, transition: LegTransition, now: datetime
) -> tuple[Command, ...]:
    """Write ``transition`` of ``leg`` and its callbacks; the commands to send after the commit."""
    leg.state = transition.state.value
    if transition.state is not LegState.PLACING:
        leg.invitation_deadline = None
    if transition.state is LegState.ENDED:
        _end(leg, now)
    for outcome in transition.outcomes:
        party_callbacks.leg_outcome(session, call, leg, outcome, now)
    if transition.state is LegState.ENDED or any(
        o.event is PartyEvent.CANCEL_FAILED for o in transition.outcomes
    ):
        leg.pending = None
    commands = _commands(session, call, leg, transition, now)
    session.flush()
    if transition.transfer_done:
        log.info("call %s transferred to %s on a new leg %s", call.id, leg.number, leg.id)
        transitions.apply(session, call, Transferred(), now)
    elif transition.participants_changed and CallState(call.state) is CallState.CONNECTED:
        party_callbacks.participants_updated(session, call, now)
    session.flush()
    return tuple(commands)


def on_leg(  # noqa: PLR0911 - one return per owner
    session: Session,
    call: Call,
    leg: CallLeg,
    event: LegConnected | LegEnded,
    now: datetime,
    legs: Sequence[CallLeg] | None = None,
) -> tuple[Command, ...] | None:
    """A worker's news about a leg of ``call`` (locked): the commands it leads to, or None when
    the call's own lifecycle decides (the call's own leg while it is the only party). ``legs``:
    the call's active legs, when the caller has read them in this transaction already."""
    role = LegRole(leg.role)
    if not leg.active:
        return None if role is LegRole.CALL else ()  # late news (lifecycle's path knows its own)
    if legs is None:
        legs = repository.active_legs(session, call.id)
    others = [other for other in legs if other.id != leg.id and party_callbacks.in_call(other)]
    state = LegState(leg.state) if leg.state else None
    owner = route(CallState(call.state), role, state, len(others))
    if owner is Owner.NOBODY:
        return ()
    if owner is Owner.CALL:
        if role is LegRole.CALL:
            return None
        # the last party: the call ends through its lifecycle, as a one-leg call does
        applied = transitions.apply(session, call, event, now)
        _end(leg, now)
        leg.state = LegState.ENDED.value
        return tuple(c for c in applied.commands if getattr(c, "call_id", None) != leg.id)
    if CallState(call.state) is CallState.ENDED:
        if isinstance(event, LegConnected):
            return ()
        return apply_leg(session, call, leg, transferred_leg_left(), now)
    signal: Answered | Ended = Answered()
    if isinstance(event, LegEnded):
        signal = Ended(event.status, event.reason, event.worker_died)
    return apply_leg(session, call, leg, step(_view(leg), signal), now)


def step_leg(session: Session, call: Call, leg: CallLeg, what: str, now: datetime) -> tuple[Command, ...]:
    """The app removes a party or cancels an invitation (legs.NotApplicable if it cannot)."""
    transition = step(_view(leg), AppRemove() if what == "remove" else AppCancel())
    return apply_leg(session, call, leg, transition, now)


def invitation_timed_out(session: Session, leg_id: str, now: datetime) -> tuple[Command, ...]:
    leg = repository.leg(session, leg_id)
    if leg is None:
        return ()
    call = repository.lock_call(session, leg.call_id)
    if call is None or not leg.active:
        return ()
    log.info("invitation %s of call %s to %s timed out", leg.invitation_id, call.id, leg.number)
    return apply_leg(session, call, leg, step(_view(leg), InvitationTimedOut()), now)


def refer_news(
    session: Session, leg_id: str, status: int, final: bool, reason: str, now: datetime
) -> tuple[Command, ...]:
    """A REFER's progress (or the worker's refusal to send it, as a final 500).

    A final 2xx is CallTransferAccepted: the transferee's leg is ours to end (BYE, as the
    transferor does once the referred call is up) and the call is no longer the app's. A carrier
    that does not support REFER after all (405, 501) gets the transfer on a new bridged leg
    instead; any other final status is CallTransferFailed with it."""
    leg = repository.leg(session, leg_id)
    if leg is None or not leg.pending or leg.pending.get("kind") != "refer":
        return ()
    call = repository.lock_call(session, leg.call_id)
    outcome = transfer_progress(status, final, reason)
    if call is None or outcome is None:
        return ()
    pending = dict(leg.pending)
    if status in REFER_UNSUPPORTED and CallState(call.state) is CallState.CONNECTED:
        log.info("call %s: REFER refused with %s; transferring on a new leg", call.id, status)
        leg.pending = None
        _, commands = place_leg(
            session, call, LegRole.TRANSFER, pending.get("target", ""), pending.get("caller", ""), leg,
            pending.get("context"), pending.get("subscription"), TRANSFER_RING_SECONDS, now,
        )  # fmt: skip
        return commands
    log.info("call %s: REFER of leg %s ended %s (%s)", call.id, leg.id, status, outcome.event.value)
    party_callbacks.leg_outcome(session, call, leg, outcome, now)
    leg.pending = None
    session.flush()
    if outcome.event is not PartyEvent.TRANSFER_ACCEPTED or CallState(call.state) is not CallState.CONNECTED:
        return ()
    transitions.apply(session, call, Transferred(), now)
    return (Hangup(leg.id),)
