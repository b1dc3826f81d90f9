"""A call's life, pure: its states, what may happen in each, and what each change sends.

Every writer of a call's state goes through :func:`step`: the API (the app's answer, reject,
redirect, hang up), the SIP process's controller (the worker's events, the ring timer) and the
recovery of a dead worker. ``step`` takes the call's current view and one input and returns a
:class:`Transition` (the new state, why it ended, the SIP action for the worker holding the leg
and the callback for the app) or raises :class:`Refused` with what the API answers.

::

    inbound:  OFFERED --answer--> ANSWERING --leg connected--> CONNECTED --BYE either way--> ENDED
              OFFERED --reject/redirect/ring timeout/caller cancel--> ENDED
    outbound: DIALING --leg connected--> CONNECTED
              DIALING --leg failed (5xx/408, more routes)--> DIALING (next destination)
              DIALING --leg failed--> ENDED (CreateCallFailed)
    any live: --app hangs up--> DISCONNECTING --leg ended--> ENDED (CallDisconnected)
    CONNECTED --a transfer's target answered (no REFER)--> ENDED (CallDisconnected; the legs
              stay bridged without the app, gateway.calls.legs owns them)

With several parties the call hears of a leg only while it is the call's last one
(gateway.calls.legs.route decides who hears what).

The lost-call bounds (the sweeper of gateway.calls.sweeper feeds these inputs):

    DIALING, not placed --app hangs up--> ENDED (no SIP process holds it: nothing to tell)
    DIALING, not placed --place timeout--> ENDED (CreateCallFailed: no SIP process took it)
    any live, placed --its SIP process lost--> ENDED (the process stopped its heartbeat)
    ANSWERING, DISCONNECTING --command timeout--> ENDED (the worker never acted on it)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CallState(StrEnum):
    OFFERED = "offered"  # inbound: 180 sent, IncomingCall published, the app has not answered
    ANSWERING = "answering"  # inbound: the app answered; the worker sends 200 OK
    DIALING = "dialing"  # outbound: an INVITE is out to one of the plan's destinations
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"  # the app hung up; BYE or CANCEL is out
    ENDED = "ended"

    @property
    def live(self) -> bool:
        return self is not CallState.ENDED


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class EndReason(StrEnum):
    """Why a call ended (kept with the call, and told to the app in resultInformation)."""

    REJECTED = "rejected"
    REDIRECTED = "redirected"
    RING_TIMEOUT = "ringTimeout"
    CALLER_CANCELLED = "callerCancelled"
    HUNG_UP = "hungUp"  # the app hung up or terminated
    FAR_END = "farEnd"  # the other side sent BYE
    FAILED = "failed"  # an outbound call that never connected
    WORKER_DIED = "workerDied"
    TRANSFERRED = "transferred"  # the app transferred the call away (its legs may live on)
    NOT_PLACED = "notPlaced"  # no SIP process took the outbound call's INVITE in time
    PROCESS_LOST = "sipProcessLost"  # the SIP process holding the call stopped its heartbeat
    COMMAND_TIMEOUT = "commandTimeout"  # the worker never carried out the answer or hang-up


class RejectReason(StrEnum):
    """ACS's CallRejectReason and the SIP status each becomes."""

    NONE = "none"
    BUSY = "busy"
    FORBIDDEN = "forbidden"

    @property
    def sip_status(self) -> int:
        return {RejectReason.NONE: 480, RejectReason.BUSY: 486, RejectReason.FORBIDDEN: 403}[self]


class Callback(StrEnum):
    """The callback event a change sends to the app's callbackUri (type minus the prefix)."""

    CALL_CONNECTED = "CallConnected"
    CALL_DISCONNECTED = "CallDisconnected"
    CREATE_CALL_FAILED = "CreateCallFailed"
    ANSWER_FAILED = "AnswerFailed"


class SipAction(StrEnum):
    """What the worker holding the call's leg is told to do."""

    ANSWER = "answer"
    REJECT = "reject"
    REDIRECT = "redirect"
    HANGUP = "hangup"
    DIAL_NEXT = "dialNext"  # place the INVITE to the plan's next destination


class Refusal(StrEnum):
    """Why an app's command was refused; the API answers each in ACS's shape."""

    NOT_FOUND = "notFound"  # 404: no such call (or it is over)
    CONFLICT = "conflict"  # 409: the call is past the point where this command applies


class Refused(Exception):
    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


# Inputs -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppAnswer:
    pass


@dataclass(frozen=True, slots=True)
class AppReject:
    reason: RejectReason = RejectReason.NONE


@dataclass(frozen=True, slots=True)
class AppRedirect:
    target: str  # the E.164 number the caller is sent to


@dataclass(frozen=True, slots=True)
class AppHangup:
    pass


@dataclass(frozen=True, slots=True)
class RingTimeout:
    pass


@dataclass(frozen=True, slots=True)
class LegConnected:
    pass


@dataclass(frozen=True, slots=True)
class LegEnded:
    """The SIP leg ended: ``status`` is the last SIP status (200 after a BYE), ``reason`` its
    phrase; ``worker_died`` when the supervisor reports the worker gone."""

    status: int
    reason: str = ""
    worker_died: bool = False


@dataclass(frozen=True, slots=True)
class Transferred:
    """A transfer's target answered a leg of its own: the call is no longer the app's."""


@dataclass(frozen=True, slots=True)
class PlaceTimeout:
    """No SIP process took the outbound call's first INVITE within ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class ProcessLost:
    """The SIP process holding the call has not refreshed its heartbeat for ``seconds``."""

    process: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CommandTimeout:
    """The call stayed ``seconds`` in ANSWERING or DISCONNECTING: the worker command was lost."""

    seconds: float


Input = (
    Transferred
    | AppAnswer
    | AppReject
    | AppRedirect
    | AppHangup
    | RingTimeout
    | LegConnected
    | LegEnded
    | PlaceTimeout
    | ProcessLost
    | CommandTimeout
)


@dataclass(frozen=True, slots=True)
class CallView:
    """What the state machine needs to know of a call."""

    state: CallState
    direction: Direction
    answered: bool = False  # it reached CONNECTED once
    destinations_left: int = 0  # outbound: destinations of the plan not tried yet
    placed: bool = True  # a SIP process holds the call (an outbound call's INVITE was taken)


@dataclass(frozen=True, slots=True)
class Transition:
    state: CallState
    end_reason: EndReason | None = None
    sip: SipAction | None = None
    sip_status: int | None = None  # REJECT's final status
    callback: Callback | None = None
    # resultInformation of the callback: a code in ACS's style, and the SIP status and phrase
    result_code: int = 200
    result_subcode: int = 0
    result_message: str = ""


# ACS's resultInformation codes for the ends Trunkline reports.
SUBCODE_NORMAL_END = 7000  # ACS: "The conversation has ended."
SUBCODE_APP_HANGUP = 5001
SUBCODE_WORKER_DIED = 5100
SUBCODE_CALL_FAILED = 5200
SUBCODE_TRANSFERRED = 7015  # ACS: "The transfer completed successfully."
SUBCODE_PROCESS_LOST = 5101  # the SIP process holding the call stopped (its heartbeat did)
SUBCODE_NOT_PLACED = 5300  # no SIP process took the outbound call's INVITE
SUBCODE_COMMAND_TIMEOUT = 5400  # the SIP side never carried out the answer or hang-up

# Failures worth the next destination: the trunk is unwell, not the callee (RFC 3261 5xx, 408).
_FAILOVER_STATUSES = frozenset({408}) | frozenset(range(500, 600))


def failover(status: int) -> bool:
    """Whether an outbound attempt that failed with ``status`` is tried on the next destination."""
    return status in _FAILOVER_STATUSES


def _conflict(call: CallView, what: str) -> Refused:
    return Refused(Refusal.CONFLICT, f"The call cannot be {what}: it is {call.state.value}.")


def step(call: CallView, event: Input) -> Transition:  # noqa: PLR0911, PLR0912 - one case per input
    """The call's change on ``event``; :class:`Refused` for an app command that does not apply."""
    state = call.state
    if state is CallState.ENDED:
        if isinstance(event, AppAnswer | AppReject | AppRedirect | AppHangup):
            raise Refused(Refusal.NOT_FOUND, "The call is over.")
        return Transition(state)  # late worker news about an ended call: nothing to do
    if isinstance(event, Transferred):
        if state is not CallState.CONNECTED:
            return Transition(state)
        return Transition(
            CallState.ENDED,
            EndReason.TRANSFERRED,
            callback=Callback.CALL_DISCONNECTED,
            result_subcode=SUBCODE_TRANSFERRED,
            result_message="The call was transferred.",
        )
    if isinstance(event, AppAnswer):
        if state is not CallState.OFFERED:
            raise _conflict(call, "answered")
        return Transition(CallState.ANSWERING, sip=SipAction.ANSWER)
    if isinstance(event, AppReject):
        if state is not CallState.OFFERED:
            raise _conflict(call, "rejected")
        return Transition(
            CallState.ENDED, EndReason.REJECTED, SipAction.REJECT, sip_status=event.reason.sip_status
        )
    if isinstance(event, AppRedirect):
        if state is not CallState.OFFERED:
            raise _conflict(call, "redirected")
        return Transition(CallState.ENDED, EndReason.REDIRECTED, SipAction.REDIRECT)
    if isinstance(event, AppHangup):
        if state is CallState.OFFERED:
            raise _conflict(call, "hung up before it is answered (reject it)")
        if state is CallState.DISCONNECTING:
            return Transition(state)  # already on its way out: hanging up again is harmless
        if state is CallState.DIALING and not call.placed:
            # no SIP process holds it: the call ends here, and the process that takes its INVITE
            # later finds it over and does not place it
            return Transition(
                CallState.ENDED,
                EndReason.HUNG_UP,
                callback=Callback.CREATE_CALL_FAILED,
                result_code=487,
                result_subcode=SUBCODE_APP_HANGUP,
                result_message="The app hung up before any SIP process placed the call.",
            )
        return Transition(CallState.DISCONNECTING, sip=SipAction.HANGUP)
    if isinstance(event, RingTimeout):
        if state is not CallState.OFFERED:
            return Transition(state)
        return Transition(CallState.ENDED, EndReason.RING_TIMEOUT, SipAction.REJECT, sip_status=480)
    if isinstance(event, LegConnected):
        if state in (CallState.ANSWERING, CallState.DIALING):
            return Transition(CallState.CONNECTED, callback=Callback.CALL_CONNECTED)
        if state is CallState.DISCONNECTING and call.direction is Direction.OUTBOUND and not call.answered:
            # the app hung up before the INVITE was answered (or before a SIP process took it):
            # the callee picked up anyway, so end the leg now
            return Transition(state, sip=SipAction.HANGUP)
        return Transition(state)
    if isinstance(event, PlaceTimeout | ProcessLost | CommandTimeout):
        return _lost(call, event)
    return _leg_ended(call, event)


def _never_connected_callback(call: CallView) -> Callback:
    """The callback that ends a call the app never heard connect."""
    return Callback.CREATE_CALL_FAILED if call.direction is Direction.OUTBOUND else Callback.ANSWER_FAILED


def _lost(call: CallView, event: PlaceTimeout | ProcessLost | CommandTimeout) -> Transition:
    """A bound passed with nobody left to end the call: end it here and say why."""
    if isinstance(event, PlaceTimeout):
        return _not_placed(call, event)
    if isinstance(event, ProcessLost):
        return _process_lost(call, event)
    return _command_timeout(call, event)


def _not_placed(call: CallView, event: PlaceTimeout) -> Transition:
    state = call.state
    if state is not CallState.DIALING or call.placed:
        return Transition(state)
    return Transition(
        CallState.ENDED,
        EndReason.NOT_PLACED,
        callback=Callback.CREATE_CALL_FAILED,
        result_code=503,
        result_subcode=SUBCODE_NOT_PLACED,
        result_message=f"No SIP process took the call within {event.seconds:g} s.",
    )


def _process_lost(call: CallView, event: ProcessLost) -> Transition:
    state = call.state
    if not call.placed:
        return Transition(state)
    message = (
        f"The SIP process holding the call ({event.process}) was lost: no heartbeat for {event.seconds:g} s."
    )
    if state is CallState.OFFERED:
        return Transition(CallState.ENDED, EndReason.PROCESS_LOST)  # no app holds it yet
    callback = Callback.CALL_DISCONNECTED if call.answered else _never_connected_callback(call)
    return Transition(
        CallState.ENDED,
        EndReason.PROCESS_LOST,
        callback=callback,
        result_code=500,
        result_subcode=SUBCODE_PROCESS_LOST,
        result_message=message,
    )


def _command_timeout(call: CallView, event: CommandTimeout) -> Transition:
    state = call.state
    if state not in (CallState.ANSWERING, CallState.DISCONNECTING):
        return Transition(state)
    what = "answer" if state is CallState.ANSWERING else "hang-up"
    callback = Callback.CALL_DISCONNECTED if call.answered else _never_connected_callback(call)
    return Transition(
        CallState.ENDED,
        EndReason.COMMAND_TIMEOUT,
        SipAction.HANGUP,  # in case the worker still holds the leg: let it go
        callback=callback,
        result_code=504,
        result_subcode=SUBCODE_COMMAND_TIMEOUT,
        result_message=f"The SIP side did not carry out the {what} within {event.seconds:g} s.",
    )


def _leg_ended(call: CallView, event: LegEnded) -> Transition:
    state = call.state
    message = event.reason or f"SIP {event.status}"
    if event.worker_died:
        reason, code, subcode = EndReason.WORKER_DIED, 500, SUBCODE_WORKER_DIED
        message = f"The SIP worker holding the call stopped ({message})."
    elif state is CallState.DISCONNECTING:
        reason, code, subcode = EndReason.HUNG_UP, 200, SUBCODE_APP_HANGUP
    else:
        reason, code, subcode = EndReason.FAR_END, 200, SUBCODE_NORMAL_END
    if state is CallState.OFFERED:
        return Transition(CallState.ENDED, EndReason.CALLER_CANCELLED)  # no app holds it yet
    outbound_unanswered = call.direction is Direction.OUTBOUND and not call.answered
    if state is CallState.DIALING or (state is CallState.DISCONNECTING and outbound_unanswered):
        retry = state is CallState.DIALING and not event.worker_died and failover(event.status)
        if retry and call.destinations_left > 0:
            return Transition(CallState.DIALING, sip=SipAction.DIAL_NEXT)
        status = event.status if event.status >= 300 else 487
        return Transition(
            CallState.ENDED,
            EndReason.HUNG_UP if state is CallState.DISCONNECTING else EndReason.FAILED,
            callback=Callback.CREATE_CALL_FAILED,
            result_code=status if not event.worker_died else 500,
            result_subcode=SUBCODE_WORKER_DIED if event.worker_died else SUBCODE_CALL_FAILED,
            result_message=message,
        )
    return Transition(
        CallState.ENDED,
        reason,
        callback=Callback.CALL_DISCONNECTED,
        result_code=code,
        result_subcode=subcode,
        result_message=message,
    )


def connection_state(state: CallState) -> str:
    """ACS's callConnectionState of a call in ``state``."""
    return {
        CallState.OFFERED: "unknown",
        CallState.ANSWERING: "connecting",
        CallState.DIALING: "connecting",
        CallState.CONNECTED: "connected",
        CallState.DISCONNECTING: "disconnecting",
        CallState.ENDED: "disconnected",
    }[state]
