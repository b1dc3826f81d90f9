"""The legs owner (gateway.calls.legs): property tests over any sequence of news and app
commands, and the orders of events ACS documents."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.calls import legs
from gateway.calls.legs import (
    Answered,
    AppCancel,
    AppRemove,
    Ended,
    InvitationTimedOut,
    LegAction,
    LegRole,
    LegState,
    LegView,
    NotApplicable,
    Owner,
    PartyEvent,
)
from gateway.calls.lifecycle import CallState

statuses = st.sampled_from([200, 408, 480, 486, 487, 500, 503, 603])
inputs = st.one_of(
    st.just(Answered()),
    st.builds(Ended, statuses, st.just(""), st.booleans()),
    st.just(InvitationTimedOut()),
    st.just(AppCancel()),
    st.just(AppRemove()),
)
roles = st.sampled_from([LegRole.PARTICIPANT, LegRole.TRANSFER])

FINAL = {
    LegRole.PARTICIPANT: {PartyEvent.ADD_SUCCEEDED, PartyEvent.ADD_FAILED},
    LegRole.TRANSFER: {PartyEvent.TRANSFER_ACCEPTED, PartyEvent.TRANSFER_FAILED},
}


@given(roles, st.lists(inputs, max_size=12), st.integers(0, 3))
def test_an_invitation_ends_exactly_once_and_an_ended_leg_stays_ended(
    role: LegRole, events: list[legs.Input], destinations: int
) -> None:
    view = LegView(role, LegState.PLACING, destinations)
    finals = []
    ended = False
    for event in events:
        try:
            transition = legs.step(view, event)
        except NotApplicable:
            assert isinstance(event, AppCancel | AppRemove)
            continue
        finals += [o.event for o in transition.outcomes if o.event in FINAL[role]]
        if ended:
            assert transition.state is LegState.ENDED
            assert transition.outcomes == ()
            assert transition.action is None
        if transition.action is LegAction.DIAL_NEXT:
            assert view.destinations_left > 0
            view = LegView(role, transition.state, view.destinations_left - 1)
        else:
            view = LegView(role, transition.state, view.destinations_left)
        ended = view.state is LegState.ENDED
        for outcome in transition.outcomes:
            assert (outcome.code < 300) == outcome.event.value.endswith(("Succeeded", "Accepted"))
    # the add (or transfer) is answered once at most: succeeded or failed, never both, never twice
    assert len(finals) <= 1
    if ended and view.state is LegState.ENDED and not finals:
        # only a leg that connected first may end without its operation's outcome
        assert any(isinstance(e, Answered) for e in events)


@given(roles, st.sampled_from(list(LegState)), inputs)
def test_a_hangup_is_asked_only_of_a_live_leg(role: LegRole, state: LegState, event: legs.Input) -> None:
    try:
        transition = legs.step(LegView(role, state), event)
    except NotApplicable:
        return
    if transition.action is LegAction.HANGUP:
        assert state in (LegState.PLACING, LegState.CONNECTED)


def test_cancel_while_ringing_sends_cancel_succeeded_then_add_failed_487() -> None:
    cancelling = legs.step(LegView(LegRole.PARTICIPANT, LegState.PLACING), AppCancel())
    assert (cancelling.state, cancelling.action, cancelling.outcomes) == (
        LegState.CANCELLING,
        LegAction.HANGUP,
        (),
    )
    ended = legs.step(LegView(LegRole.PARTICIPANT, LegState.CANCELLING), Ended(487, "Request Terminated"))
    assert [o.event for o in ended.outcomes] == [PartyEvent.CANCEL_SUCCEEDED, PartyEvent.ADD_FAILED]
    assert ended.outcomes[1].code == 487
    assert ended.outcomes[1].sip_status == 487


def test_an_answer_racing_the_cancel_keeps_the_party() -> None:
    answered = legs.step(LegView(LegRole.PARTICIPANT, LegState.CANCELLING), Answered())
    assert answered.state is LegState.CONNECTED
    assert [o.event for o in answered.outcomes] == [PartyEvent.CANCEL_FAILED, PartyEvent.ADD_SUCCEEDED]
    assert answered.participants_changed


def test_the_invitation_timeout_hangs_up_and_fails_with_408() -> None:
    timed_out = legs.step(LegView(LegRole.PARTICIPANT, LegState.PLACING), InvitationTimedOut())
    assert timed_out.action is LegAction.HANGUP
    assert timed_out.state is LegState.ENDED
    (outcome,) = timed_out.outcomes
    assert (outcome.event, outcome.code, outcome.sip_status) == (PartyEvent.ADD_FAILED, 408, 408)


@pytest.mark.parametrize(
    ("status", "left", "action"), [(503, 1, LegAction.DIAL_NEXT), (503, 0, None), (486, 2, None)]
)
def test_failover_as_create_call_does(status: int, left: int, action: LegAction | None) -> None:
    transition = legs.step(LegView(LegRole.PARTICIPANT, LegState.PLACING, left), Ended(status))
    assert transition.action is action
    if action is None:
        assert transition.outcomes[0].code == status


def test_remove_then_the_bye_answered_is_remove_succeeded_and_participants_updated() -> None:
    removing = legs.step(LegView(LegRole.PARTICIPANT, LegState.CONNECTED), AppRemove())
    assert (removing.state, removing.action) == (LegState.REMOVING, LegAction.HANGUP)
    gone = legs.step(LegView(LegRole.PARTICIPANT, LegState.REMOVING), Ended(200))
    assert [o.event for o in gone.outcomes] == [PartyEvent.REMOVE_SUCCEEDED]
    assert gone.participants_changed


def test_a_transfer_target_answering_ends_the_apps_side() -> None:
    answered = legs.step(LegView(LegRole.TRANSFER, LegState.PLACING), Answered())
    assert answered.transfer_done
    assert [o.event for o in answered.outcomes] == [PartyEvent.TRANSFER_ACCEPTED]
    failed = legs.step(LegView(LegRole.TRANSFER, LegState.PLACING), Ended(486, "Busy Here"))
    assert [(o.event, o.sip_status) for o in failed.outcomes] == [(PartyEvent.TRANSFER_FAILED, 486)]


@given(
    st.sampled_from(list(CallState)),
    st.sampled_from(list(LegRole)),
    st.sampled_from([None, *LegState]),
    st.integers(0, 3),
)
def test_route_gives_the_call_only_its_own_leg_or_the_last_party(
    call: CallState, role: LegRole, state: LegState | None, others: int
) -> None:
    owner = legs.route(call, role, state if role is not LegRole.CALL else None, others)
    if owner is Owner.CALL:
        assert call is not CallState.ENDED
        assert role is LegRole.CALL or others == 0
    if (
        role is LegRole.CALL
        and call is not CallState.ENDED
        and (call is not CallState.CONNECTED or others == 0)
    ):
        assert owner is Owner.CALL
    if role is not LegRole.CALL and state in (LegState.PLACING, LegState.CANCELLING) and call.live:
        assert owner is Owner.LEGS  # an invitation never ends the call


@pytest.mark.parametrize(
    ("status", "final", "event"),
    [
        (100, False, None),
        (180, False, None),
        (200, True, PartyEvent.TRANSFER_ACCEPTED),
        (486, True, PartyEvent.TRANSFER_FAILED),
    ],
)
def test_refer_progress(status: int, final: bool, event: PartyEvent | None) -> None:
    outcome = legs.transfer_progress(status, final)
    assert (outcome.event if outcome else None) is event
    if outcome is not None and event is PartyEvent.TRANSFER_FAILED:
        assert outcome.sip_status == status
