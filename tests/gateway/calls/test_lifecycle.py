"""The call state machine: properties over every state and input, and the paths of issue 12."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.calls.lifecycle import (
    AppAnswer,
    AppHangup,
    AppRedirect,
    AppReject,
    Callback,
    CallState,
    CallView,
    CommandTimeout,
    Direction,
    EndReason,
    LegConnected,
    LegEnded,
    PlaceTimeout,
    ProcessLost,
    Refusal,
    Refused,
    RejectReason,
    RingTimeout,
    SipAction,
    connection_state,
    failover,
    step,
)

APP = (AppAnswer, AppReject, AppRedirect, AppHangup)
inputs = st.one_of(
    st.just(AppAnswer()),
    st.builds(AppReject, st.sampled_from(RejectReason)),
    st.just(AppRedirect("+15550001")),
    st.just(AppHangup()),
    st.just(RingTimeout()),
    st.just(LegConnected()),
    st.builds(LegEnded, st.integers(100, 699), st.text(max_size=5), st.booleans()),
    st.builds(PlaceTimeout, st.floats(1, 600)),
    st.builds(ProcessLost, st.text(min_size=1, max_size=8), st.floats(3, 600)),
    st.builds(CommandTimeout, st.floats(1, 600)),
)
views = st.builds(
    CallView,
    st.sampled_from(CallState),
    st.sampled_from(Direction),
    st.booleans(),
    st.integers(0, 3),
    st.booleans(),
)
bounds = st.one_of(
    st.builds(PlaceTimeout, st.floats(1, 600)),
    st.builds(ProcessLost, st.text(min_size=1, max_size=8), st.floats(3, 600)),
    st.builds(CommandTimeout, st.floats(1, 600)),
)


@given(views, inputs)
def test_every_input_either_moves_the_call_or_is_refused_with_an_api_answer(
    call: CallView, event: object
) -> None:
    try:
        transition = step(call, event)  # type: ignore[arg-type]
    except Refused:
        assert isinstance(event, APP)  # only the app's commands are refused
        return
    if call.state is CallState.ENDED:
        assert transition.state is CallState.ENDED
        assert transition.sip is None
        assert transition.callback is None
    if transition.state is CallState.ENDED and call.state is not CallState.ENDED:
        assert transition.end_reason is not None
    if transition.sip is SipAction.REJECT:
        assert transition.sip_status in (403, 480, 486)
    if transition.callback is not None:
        assert call.state is not CallState.OFFERED  # no app callback before the app answered


@given(views, st.builds(LegEnded, st.integers(100, 699), st.text(max_size=5), st.booleans()))
def test_a_leg_ending_always_ends_the_call_unless_it_fails_over(call: CallView, ended: LegEnded) -> None:
    transition = step(call, ended)
    if transition.sip is SipAction.DIAL_NEXT:
        assert call.state is CallState.DIALING
        assert call.destinations_left > 0
        assert failover(ended.status)
    else:
        assert transition.state is CallState.ENDED


def test_inbound_answer_connect_far_end_bye() -> None:
    offered = CallView(CallState.OFFERED, Direction.INBOUND)
    answering = step(offered, AppAnswer())
    assert (answering.state, answering.sip) == (CallState.ANSWERING, SipAction.ANSWER)
    connected = step(CallView(answering.state, Direction.INBOUND), LegConnected())
    assert (connected.state, connected.callback) == (CallState.CONNECTED, Callback.CALL_CONNECTED)
    ended = step(CallView(CallState.CONNECTED, Direction.INBOUND, answered=True), LegEnded(200, "BYE"))
    assert (ended.state, ended.end_reason, ended.callback) == (
        CallState.ENDED,
        EndReason.FAR_END,
        Callback.CALL_DISCONNECTED,
    )


@pytest.mark.parametrize(
    ("reason", "status"), [(RejectReason.NONE, 480), (RejectReason.BUSY, 486), (RejectReason.FORBIDDEN, 403)]
)
def test_reject_reasons_map_to_sip(reason: RejectReason, status: int) -> None:
    transition = step(CallView(CallState.OFFERED, Direction.INBOUND), AppReject(reason))
    assert (transition.sip, transition.sip_status, transition.end_reason) == (
        SipAction.REJECT,
        status,
        EndReason.REJECTED,
    )


def test_ring_timeout_is_480_and_a_later_answer_conflicts() -> None:
    transition = step(CallView(CallState.OFFERED, Direction.INBOUND), RingTimeout())
    assert (transition.state, transition.sip_status) == (CallState.ENDED, 480)
    with pytest.raises(Refused) as refused:
        step(CallView(CallState.ENDED, Direction.INBOUND), AppAnswer())
    assert refused.value.refusal is Refusal.NOT_FOUND
    with pytest.raises(Refused) as twice:
        step(CallView(CallState.CONNECTED, Direction.INBOUND), AppAnswer())
    assert twice.value.refusal is Refusal.CONFLICT


def test_outbound_fails_over_on_5xx_then_reports_create_call_failed() -> None:
    dialing = CallView(CallState.DIALING, Direction.OUTBOUND, destinations_left=1)
    assert step(dialing, LegEnded(503)).sip is SipAction.DIAL_NEXT
    assert step(dialing, LegEnded(486)).callback is Callback.CREATE_CALL_FAILED  # busy: no failover
    last = step(CallView(CallState.DIALING, Direction.OUTBOUND), LegEnded(503, "Service Unavailable"))
    assert (last.callback, last.result_code, last.result_message) == (
        Callback.CREATE_CALL_FAILED,
        503,
        "Service Unavailable",
    )


def test_a_dead_worker_ends_a_connected_call_saying_why() -> None:
    transition = step(
        CallView(CallState.CONNECTED, Direction.INBOUND, True), LegEnded(500, "worker died", True)
    )
    assert transition.end_reason is EndReason.WORKER_DIED
    assert "worker" in transition.result_message
    assert transition.result_code == 500


def test_connection_states_are_acs_values() -> None:
    assert {connection_state(s) for s in CallState} <= {
        "unknown", "connecting", "connected", "disconnecting", "disconnected"
    }  # fmt: skip


def test_an_outbound_leg_answered_after_the_app_hung_up_is_hung_up() -> None:
    dialing = CallView(CallState.DIALING, Direction.OUTBOUND)
    hung_up = step(dialing, AppHangup())
    assert (hung_up.state, hung_up.sip) == (CallState.DISCONNECTING, SipAction.HANGUP)
    late = step(CallView(CallState.DISCONNECTING, Direction.OUTBOUND), LegConnected())
    assert (late.state, late.sip, late.callback) == (CallState.DISCONNECTING, SipAction.HANGUP, None)
    # once connected, a repeated connect report changes nothing
    again = step(CallView(CallState.DISCONNECTING, Direction.OUTBOUND, answered=True), LegConnected())
    assert again.sip is None


# The lost-call bounds ---------------------------------------------------------------------------


@given(views, bounds)
def test_a_bound_ends_only_the_calls_it_is_about_and_says_why(
    call: CallView, event: PlaceTimeout | ProcessLost | CommandTimeout
) -> None:
    transition = step(call, event)
    if isinstance(event, PlaceTimeout):
        due = call.state is CallState.DIALING and not call.placed
    elif isinstance(event, ProcessLost):
        due = call.state is not CallState.ENDED and call.placed
    else:
        due = call.state in (CallState.ANSWERING, CallState.DISCONNECTING)
    if not due:
        assert transition.state is call.state
        assert transition.callback is None
        assert transition.sip is None
        return
    assert transition.state is CallState.ENDED
    assert transition.end_reason in (
        EndReason.NOT_PLACED,
        EndReason.PROCESS_LOST,
        EndReason.COMMAND_TIMEOUT,
    )
    if call.state is CallState.OFFERED:
        assert transition.callback is None  # the app never took the call
        return
    assert transition.callback is not None
    assert transition.result_message
    assert transition.result_code >= 500
    if isinstance(event, PlaceTimeout):
        assert transition.callback is Callback.CREATE_CALL_FAILED  # only a createCall is unplaced
    elif call.answered:
        assert transition.callback is Callback.CALL_DISCONNECTED
    elif call.direction is Direction.OUTBOUND:
        assert transition.callback is Callback.CREATE_CALL_FAILED
    else:
        assert transition.callback is Callback.ANSWER_FAILED
    # a lost process cannot be told anything; a timed-out command's worker is told to let go
    assert transition.sip is (SipAction.HANGUP if isinstance(event, CommandTimeout) else None)


@given(views, bounds)
def test_an_ended_call_stays_ended_under_every_bound(
    call: CallView, event: PlaceTimeout | ProcessLost | CommandTimeout
) -> None:
    ended = CallView(CallState.ENDED, call.direction, call.answered, call.destinations_left, call.placed)
    assert step(ended, event) == step(ended, LegConnected())


def test_an_unplaced_call_no_process_takes_fails_with_503_saying_so() -> None:
    transition = step(CallView(CallState.DIALING, Direction.OUTBOUND, placed=False), PlaceTimeout(10))
    assert (transition.callback, transition.result_code, transition.result_subcode) == (
        Callback.CREATE_CALL_FAILED,
        503,
        5300,
    )
    assert transition.result_message == "No SIP process took the call within 10 s."
    # once a process took it, the SIP timers own it
    assert step(CallView(CallState.DIALING, Direction.OUTBOUND), PlaceTimeout(10)).state is CallState.DIALING


def test_a_hang_up_before_any_process_took_the_call_ends_it_at_once() -> None:
    transition = step(CallView(CallState.DIALING, Direction.OUTBOUND, placed=False), AppHangup())
    assert (transition.state, transition.sip, transition.end_reason) == (
        CallState.ENDED,
        None,  # nobody to tell: the process that takes the INVITE later finds the call over
        EndReason.HUNG_UP,
    )
    assert (transition.callback, transition.result_code) == (Callback.CREATE_CALL_FAILED, 487)


def test_a_lost_process_ends_a_connected_call_with_call_disconnected() -> None:
    connected = CallView(CallState.CONNECTED, Direction.INBOUND, answered=True)
    transition = step(connected, ProcessLost("host-1-abc", 10))
    assert (transition.callback, transition.result_code, transition.result_subcode) == (
        Callback.CALL_DISCONNECTED,
        500,
        5101,
    )
    assert "host-1-abc" in transition.result_message
    assert "lost" in transition.result_message


def test_a_lost_answer_ends_in_answer_failed_and_a_lost_hang_up_in_call_disconnected() -> None:
    answering = step(CallView(CallState.ANSWERING, Direction.INBOUND), CommandTimeout(40))
    assert (answering.callback, answering.result_code, answering.result_subcode) == (
        Callback.ANSWER_FAILED,
        504,
        5400,
    )
    assert "answer" in answering.result_message
    hanging_up = step(
        CallView(CallState.DISCONNECTING, Direction.OUTBOUND, answered=True), CommandTimeout(40)
    )
    assert (hanging_up.callback, hanging_up.end_reason) == (
        Callback.CALL_DISCONNECTED,
        EndReason.COMMAND_TIMEOUT,
    )
