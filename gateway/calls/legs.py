"""The legs of a call with several parties, pure: who owns a worker event about a leg, and the
life of a leg an app added (``participants:add``) or a transfer placed, with what each change
sends.

A call's own leg (the caller of an inbound call, the callee of createCall) is the call's:
gateway.calls.lifecycle owns the call's state and decides on that leg while it is the only one.
This module owns the state of every other leg and of the participant operation on it, and
:func:`route` says which of the two owners hears a worker's news about a leg.

::

    PLACING --answered--> CONNECTED                (AddParticipantSucceeded / CallTransferAccepted)
    PLACING --failed (5xx/408, more routes)--> PLACING (next destination)
    PLACING --failed / invitation timeout--> ENDED  (AddParticipantFailed / CallTransferFailed)
    PLACING --app cancels--> CANCELLING --ended--> ENDED
                                 (CancelAddParticipantSucceeded, then AddParticipantFailed 487)
    CANCELLING --answered anyway--> CONNECTED (CancelAddParticipantFailed, AddParticipantSucceeded)
    CONNECTED --app removes--> REMOVING --ended--> ENDED (RemoveParticipantSucceeded)
    CONNECTED --far end hangs up--> ENDED (ParticipantsUpdated)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.calls.lifecycle import CallState, failover


class LegRole(StrEnum):
    CALL = "call"  # the call's own leg (lifecycle.py's)
    PARTICIPANT = "participant"  # placed by participants:add
    TRANSFER = "transfer"  # placed by :transferToParticipant (the trunk takes no REFER)


class LegState(StrEnum):
    PLACING = "placing"  # the INVITE is out to one of the plan's destinations
    CANCELLING = "cancelling"  # the app cancelled the invitation; CANCEL is out
    CONNECTED = "connected"
    REMOVING = "removing"  # the app removed it; BYE is out
    ENDED = "ended"


class PartyEvent(StrEnum):
    """The callback events of participant operations (type minus ``Microsoft.Communication.``)."""

    ADD_SUCCEEDED = "AddParticipantSucceeded"
    ADD_FAILED = "AddParticipantFailed"
    REMOVE_SUCCEEDED = "RemoveParticipantSucceeded"
    REMOVE_FAILED = "RemoveParticipantFailed"
    CANCEL_SUCCEEDED = "CancelAddParticipantSucceeded"
    CANCEL_FAILED = "CancelAddParticipantFailed"
    TRANSFER_ACCEPTED = "CallTransferAccepted"
    TRANSFER_FAILED = "CallTransferFailed"
    PARTICIPANTS_UPDATED = "ParticipantsUpdated"


class LegAction(StrEnum):
    HANGUP = "hangup"  # CANCEL or BYE on this leg
    DIAL_NEXT = "dialNext"  # the INVITE to the plan's next destination
    HANGUP_OTHERS = "hangupOthers"  # the call's app side is gone: end the legs left bridged


class Owner(StrEnum):
    CALL = "call"  # lifecycle.step decides
    LEGS = "legs"  # this module's step decides
    NOBODY = "nobody"  # news of a leg already over


# resultInformation of each outcome: (code, subCode, message). ACS's codes where its
# troubleshooting table gives them (docs/calls.md lists them), the SIP status otherwise.
ADD_SUCCEEDED = (200, 0, "Add participant completed.")
REMOVE_SUCCEEDED = (200, 0, "Remove participant completed.")
CANCEL_SUCCEEDED = (200, 0, "Cancel add participant completed.")
CANCEL_TOO_LATE = (400, 8545, "The invitation was answered before it could be cancelled.")
ADD_CANCELLED = (487, 0, "The invitation was cancelled.")
INVITATION_TIMEOUT = (408, 0, "The participant did not answer in time.")
TRANSFER_ACCEPTED = (200, 7015, "The transfer completed successfully.")
WORKER_DIED = (500, 5100, "The SIP worker holding the leg stopped.")
PARTICIPANTS_CHANGED = (200, 0, "The participants of the call changed.")


@dataclass(frozen=True, slots=True)
class Outcome:
    """One callback a change sends: the event and its resultInformation."""

    event: PartyEvent
    code: int
    subcode: int
    message: str
    sip_status: int | None = None


# Inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answered:
    pass


@dataclass(frozen=True, slots=True)
class Ended:
    status: int
    reason: str = ""
    worker_died: bool = False


@dataclass(frozen=True, slots=True)
class InvitationTimedOut:
    pass


@dataclass(frozen=True, slots=True)
class AppCancel:
    pass


@dataclass(frozen=True, slots=True)
class AppRemove:
    pass


Input = Answered | Ended | InvitationTimedOut | AppCancel | AppRemove


@dataclass(frozen=True, slots=True)
class LegView:
    role: LegRole
    state: LegState
    destinations_left: int = 0


@dataclass(frozen=True, slots=True)
class LegTransition:
    state: LegState
    action: LegAction | None = None
    outcomes: tuple[Outcome, ...] = ()
    participants_changed: bool = False  # ParticipantsUpdated follows
    transfer_done: bool = False  # a transfer target answered: the call's app side goes


class NotApplicable(Exception):
    """An app's command that does not apply to the leg in its state (the API answers 400)."""


def _failed(role: LegRole, code: int, subcode: int, message: str, sip: int | None) -> Outcome:
    event = PartyEvent.TRANSFER_FAILED if role is LegRole.TRANSFER else PartyEvent.ADD_FAILED
    return Outcome(event, code, subcode, message, sip)


def _answered(role: LegRole) -> Outcome:
    if role is LegRole.TRANSFER:
        return Outcome(PartyEvent.TRANSFER_ACCEPTED, *TRANSFER_ACCEPTED)
    return Outcome(PartyEvent.ADD_SUCCEEDED, *ADD_SUCCEEDED)


def step(leg: LegView, event: Input) -> LegTransition:  # noqa: PLR0911 - one case per input
    """A participant or transfer leg's change on ``event``; :class:`NotApplicable` for an app
    command that does not apply."""
    state, role = leg.state, leg.role
    if isinstance(event, AppCancel):
        if state is LegState.PLACING:
            return LegTransition(LegState.CANCELLING, LegAction.HANGUP)
        raise NotApplicable(f"The invitation is no longer pending (the participant is {state.value}).")
    if isinstance(event, AppRemove):
        if state is LegState.CONNECTED:
            return LegTransition(LegState.REMOVING, LegAction.HANGUP)
        raise NotApplicable(f"The participant cannot be removed: it is {state.value}.")
    if state is LegState.ENDED:
        return LegTransition(state)
    if isinstance(event, Answered):
        if state is LegState.PLACING:
            return LegTransition(
                LegState.CONNECTED,
                outcomes=(_answered(role),),
                participants_changed=True,
                transfer_done=role is LegRole.TRANSFER,
            )
        if state is LegState.CANCELLING:
            # the far end answered before our CANCEL reached it: the party is in the call
            return LegTransition(
                LegState.CONNECTED,
                outcomes=(Outcome(PartyEvent.CANCEL_FAILED, *CANCEL_TOO_LATE), _answered(role)),
                participants_changed=True,
                transfer_done=role is LegRole.TRANSFER,
            )
        return LegTransition(state)
    if isinstance(event, InvitationTimedOut):
        if state is not LegState.PLACING:
            return LegTransition(state)
        return LegTransition(LegState.ENDED, LegAction.HANGUP, (_failed(role, *INVITATION_TIMEOUT, 408),))
    return _ended(leg, event)


def _ended(leg: LegView, event: Ended) -> LegTransition:
    state, role = leg.state, leg.role
    message = event.reason or f"SIP {event.status}"
    if state is LegState.PLACING:
        if not event.worker_died and failover(event.status) and leg.destinations_left > 0:
            return LegTransition(LegState.PLACING, LegAction.DIAL_NEXT)
        if event.worker_died:
            return LegTransition(LegState.ENDED, outcomes=(_failed(role, *WORKER_DIED, None),))
        status = event.status if event.status >= 300 else 487
        return LegTransition(LegState.ENDED, outcomes=(_failed(role, status, 0, message, status),))
    if state is LegState.CANCELLING:
        return LegTransition(
            LegState.ENDED,
            outcomes=(
                Outcome(PartyEvent.CANCEL_SUCCEEDED, *CANCEL_SUCCEEDED),
                _failed(role, *ADD_CANCELLED, 487),
            ),
        )
    if state is LegState.REMOVING:
        return LegTransition(
            LegState.ENDED,
            outcomes=(Outcome(PartyEvent.REMOVE_SUCCEEDED, *REMOVE_SUCCEEDED),),
            participants_changed=True,
        )
    return LegTransition(LegState.ENDED, participants_changed=True)  # the far end hung up


def route(call: CallState, role: LegRole, leg: LegState | None, other_live_legs: int) -> Owner:
    """Which owner decides on a worker's news about a leg.

    ``leg`` is the legs owner's state (None for the call's own leg), ``other_live_legs`` the
    connected legs of the call besides this one. The call's lifecycle hears of its own leg while
    that is the call's only party, and of any leg that is the last one standing (so the call
    ends as a one-leg call does, with CallDisconnected); everything else is this module's.
    """
    if call is CallState.ENDED:
        # a transferred call: the legs stay bridged without the app; one ending ends the others
        return Owner.LEGS if leg is not LegState.ENDED else Owner.NOBODY
    if role is LegRole.CALL:
        if call is CallState.CONNECTED and other_live_legs > 0:
            return Owner.LEGS
        return Owner.CALL
    if leg is LegState.ENDED or leg is None:
        return Owner.NOBODY
    if leg in (LegState.CONNECTED, LegState.REMOVING) and other_live_legs == 0:
        return Owner.CALL  # the last party left: the call's end
    return Owner.LEGS


def transferred_leg_left() -> LegTransition:
    """A leg of a transferred call (the app is gone) ended: the others go with it."""
    return LegTransition(LegState.ENDED, LegAction.HANGUP_OTHERS)


def transfer_progress(status: int, final: bool, reason: str = "") -> Outcome | None:
    """A REFER's NOTIFY: a final 2xx is CallTransferAccepted, another final status
    CallTransferFailed with it; provisional news sends nothing."""
    if not final:
        return None
    if 200 <= status < 300:
        return Outcome(PartyEvent.TRANSFER_ACCEPTED, *TRANSFER_ACCEPTED)
    return Outcome(PartyEvent.TRANSFER_FAILED, status, 0, reason or f"SIP {status}", status)
