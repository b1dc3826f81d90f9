"""Participant operations on both databases: the API (HMAC) writes the legs and answers in ACS's
shape, the SIP process's controller takes the worker's news about each leg, and the callbacks
in the outbox are the ones ACS sends, in its order, parsed by the official SDK's models."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from azure.communication.callautomation._generated import models as rest
from azure.communication.callautomation._models import (
    AddParticipantResult,
    CancelAddParticipantOperationResult,
)
from fastapi import FastAPI
from sqlalchemy import update

from gateway.calls.models import CallLeg
from gateway.core.db import Database, utcnow
from sip.worker.messages import (
    Bridge,
    CallState,
    CommandFailed,
    Hangup,
    MakeCall,
    Mute,
    Transfer,
    TransferProgress,
)
from tests.gateway.calls.parties_support import (
    APP_NUMBER,
    CALLER,
    CALLING,
    OTHER,
    PROCESS,
    FakeRuntime,
    callbacks,
    connected_call,
    controller,
    leg_state,
    legs_of,
    operator_trunks,
    use_recorder,
    worker_event,
)
from tests.support.acs import AcsClient, assert_acs_error
from tests.support.voice_numbers import own_voice_number

PSTN = {"kind": "phoneNumber", "phoneNumber": {"value": OTHER}}
EVENT_MODELS = {
    "AddParticipantSucceeded": rest.AddParticipantSucceeded,
    "AddParticipantFailed": rest.AddParticipantFailed,
    "RemoveParticipantSucceeded": rest.RemoveParticipantSucceeded,
    "CancelAddParticipantSucceeded": rest.CancelAddParticipantSucceeded,
    "CancelAddParticipantFailed": rest.CancelAddParticipantFailed,
    "ParticipantsUpdated": rest.ParticipantsUpdated,
    "CallTransferAccepted": rest.CallTransferAccepted,
    "CallTransferFailed": rest.CallTransferFailed,
}


@pytest.fixture
def call(database: Database, resource_a: dict[str, Any]) -> tuple[str, str]:
    own_voice_number(database, resource_a["id"], APP_NUMBER, "inbound+outbound")
    operator_trunks(database)
    return connected_call(database, resource_a["id"])


def _add(acs: AcsClient, call_id: str, **extra: Any) -> Any:
    body = {"participantToAdd": PSTN, "sourceCallerIdNumber": {"value": APP_NUMBER}, **extra}
    return acs.post(f"/calling/callConnections/{call_id}/participants:add?{CALLING}", body)


def _parsed(database: Database) -> list[tuple[str, dict[str, Any]]]:
    """The callbacks, each checked against the SDK's model of its event."""
    found = callbacks(database)
    for kind, data in found:
        model = EVENT_MODELS.get(kind)
        if model is None:
            continue
        parsed = model.deserialize(data)
        assert parsed.call_connection_id == data["callConnectionId"]
        assert parsed.result_information is not None
        assert parsed.result_information.code is not None
        if "participant" in data:
            assert parsed.participant.raw_id == data["participant"]["rawId"]
    return found


def test_add_connect_and_the_far_end_leaves(
    app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str]
) -> None:
    call_id, caller_leg = call
    recorder = use_recorder(app)
    response = _add(acs_a, call_id, operationContext="add-1", invitationTimeoutInSeconds=20)
    assert response.status_code == 202, response.text
    result = AddParticipantResult._from_generated(rest.AddParticipantResponse.deserialize(response.json()))
    assert result.operation_context == "add-1"
    assert result.participant.identifier.raw_id == f"4:{OTHER}"
    ((process, make),) = recorder.sent
    assert process == PROCESS
    assert isinstance(make, MakeCall)
    assert make.bridge_with == caller_leg
    assert make.target == f"sip:{OTHER}@127.0.0.1:5099"
    assert make.from_uri == f"sip:{APP_NUMBER}@127.0.0.1"

    participants = acs_a.request("GET", f"/calling/callConnections/{call_id}/participants?{CALLING}").json()
    assert [p["identifier"]["rawId"] for p in participants["value"]] == [f"4:{CALLER}"]

    ctl, runtime = controller(database), FakeRuntime()
    leg_state(ctl, runtime, make.call_id, CallState.CONNECTED)
    events = _parsed(database)
    assert [kind for kind, _ in events] == ["AddParticipantSucceeded", "ParticipantsUpdated"]
    assert events[0][1]["operationContext"] == "add-1"
    updated = events[1][1]
    assert updated["sequenceNumber"] == 1
    assert {p["identifier"]["rawId"] for p in updated["participants"]} == {f"4:{CALLER}", f"4:{OTHER}"}
    participants = acs_a.request("GET", f"/calling/callConnections/{call_id}/participants?{CALLING}").json()
    assert len(participants["value"]) == 2

    leg_state(ctl, runtime, make.call_id, CallState.DISCONNECTED, 200)
    events = _parsed(database)
    assert events[-1][0] == "ParticipantsUpdated"
    assert events[-1][1]["sequenceNumber"] == 2
    assert [p["identifier"]["rawId"] for p in events[-1][1]["participants"]] == [f"4:{CALLER}"]
    assert runtime.sent == []  # the call goes on with its caller

    leg_state(ctl, runtime, caller_leg, CallState.DISCONNECTED, 200)
    assert callbacks(database)[-1][0] == "CallDisconnected"


def test_the_caller_leaves_first_and_the_last_party_ends_the_call(
    app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str]
) -> None:
    call_id, caller_leg = call
    recorder = use_recorder(app)
    _add(acs_a, call_id)
    added = recorder.sent[0][1].call_id
    ctl, runtime = controller(database), FakeRuntime()
    leg_state(ctl, runtime, added, CallState.CONNECTED)
    leg_state(ctl, runtime, caller_leg, CallState.DISCONNECTED, 200)
    assert callbacks(database)[-1][0] == "ParticipantsUpdated"
    leg_state(ctl, runtime, added, CallState.DISCONNECTED, 200)
    assert callbacks(database)[-1][0] == "CallDisconnected"
    assert all(not leg.active for leg in legs_of(database, call_id))


def test_cancel_while_ringing(
    app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str]
) -> None:
    call_id, _ = call
    recorder = use_recorder(app)
    invitation = _add(acs_a, call_id, operationContext="add").json()["invitationId"]
    added = recorder.sent[0][1].call_id
    response = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:cancelAddParticipant?{CALLING}",
        {"invitationId": invitation, "operationContext": "cancel"},
    )
    assert response.status_code == 202, response.text
    result = CancelAddParticipantOperationResult._from_generated(
        rest.CancelAddParticipantResponse.deserialize(response.json())
    )
    assert (result.invitation_id, result.operation_context) == (invitation, "cancel")
    assert recorder.sent[-1] == (PROCESS, Hangup(added))
    ctl, runtime = controller(database), FakeRuntime()
    leg_state(ctl, runtime, added, CallState.DISCONNECTED, 487)
    events = _parsed(database)
    assert [kind for kind, _ in events] == ["CancelAddParticipantSucceeded", "AddParticipantFailed"]
    assert events[0][1]["invitationId"] == invitation
    assert events[0][1]["operationContext"] == "cancel"
    assert events[1][1]["operationContext"] == "add"
    assert events[1][1]["resultInformation"]["code"] == 487

    again = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:cancelAddParticipant?{CALLING}",
        {"invitationId": invitation},
    )
    assert again.status_code == 202
    assert callbacks(database)[-1][0] == "CancelAddParticipantFailed"
    unknown = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:cancelAddParticipant?{CALLING}",
        {"invitationId": "nope"},
    )
    assert_acs_error(unknown, 404, "InvitationNotFound", "invitationId")


def test_invitation_timeout_and_failover(
    app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str]
) -> None:
    call_id, caller_leg = call
    recorder = use_recorder(app)
    _add(acs_a, call_id, invitationTimeoutInSeconds=5)
    added = recorder.sent[0][1].call_id
    ctl, runtime = controller(database), FakeRuntime()
    leg_state(ctl, runtime, added, CallState.DISCONNECTED, 503)
    (retry,) = runtime.sent
    assert isinstance(retry, MakeCall)
    assert retry.target == f"sip:{OTHER}@127.0.0.2:5098"
    assert retry.bridge_with == caller_leg
    assert callbacks(database) == []
    with database.session() as session:
        session.execute(
            update(CallLeg).where(CallLeg.id == added).values(invitation_deadline=utcnow() - timedelta(1))
        )
    assert ctl.parties.due_invitations() == [Hangup(added)]
    events = _parsed(database)
    assert [kind for kind, _ in events] == ["AddParticipantFailed"]
    assert events[0][1]["resultInformation"]["code"] == 408
    leg_state(ctl, runtime, added, CallState.DISCONNECTED, 487)  # the CANCEL's answer: nothing more
    assert len(callbacks(database)) == 1


def test_remove_and_mute(app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str]) -> None:
    call_id, caller_leg = call
    recorder = use_recorder(app)
    lonely = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:remove?{CALLING}",
        {"participantToRemove": {"rawId": f"4:{CALLER}"}},
    )
    assert_acs_error(lonely, 400, target="participantToRemove")
    _add(acs_a, call_id)
    added = recorder.sent[0][1].call_id
    ctl, runtime = controller(database), FakeRuntime()
    leg_state(ctl, runtime, added, CallState.CONNECTED)

    muted = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:mute?{CALLING}",
        {"targetParticipants": [PSTN], "operationContext": "mute"},
    )
    assert muted.status_code == 200
    assert muted.json() == {"operationContext": "mute"}
    assert recorder.sent[-1] == (PROCESS, Mute(added, True))
    got = acs_a.request("GET", f"/calling/callConnections/{call_id}/participants/4:{OTHER}?{CALLING}")
    assert got.json()["isMuted"] is True

    removed = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:remove?{CALLING}",
        {"participantToRemove": PSTN, "operationContext": "bye"},
    )
    assert removed.status_code == 202
    assert removed.json() == {"operationContext": "bye"}
    assert recorder.sent[-1] == (PROCESS, Hangup(added))
    leg_state(ctl, runtime, added, CallState.DISCONNECTED, 200)
    events = _parsed(database)
    assert [kind for kind, _ in events][-2:] == ["RemoveParticipantSucceeded", "ParticipantsUpdated"]
    assert events[-2][1]["operationContext"] == "bye"
    missing = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:remove?{CALLING}", {"participantToRemove": PSTN}
    )
    assert_acs_error(missing, 404, "ParticipantNotFound", "participantToRemove")
    del caller_leg


def test_transfer_on_a_new_leg(
    app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str]
) -> None:
    call_id, caller_leg = call
    recorder = use_recorder(app)
    response = acs_a.post(
        f"/calling/callConnections/{call_id}:transferToParticipant?{CALLING}",
        {"targetParticipant": PSTN, "operationContext": "xfer"},
    )
    assert response.status_code == 202
    assert response.json() == {"operationContext": "xfer"}
    ((_, make),) = recorder.sent
    assert isinstance(make, MakeCall)
    assert make.bridge_with == caller_leg
    assert make.from_uri == f"sip:{APP_NUMBER}@127.0.0.1"
    ctl, runtime = controller(database), FakeRuntime()
    leg_state(ctl, runtime, make.call_id, CallState.CONNECTED)
    events = _parsed(database)
    assert [kind for kind, _ in events] == ["CallTransferAccepted", "CallDisconnected"]
    assert events[0][1]["transferTarget"]["rawId"] == f"4:{OTHER}"
    assert events[0][1]["transferee"]["rawId"] == f"4:{CALLER}"
    assert events[0][1]["operationContext"] == "xfer"
    assert all(leg.active for leg in legs_of(database, call_id))  # still bridged, without the app
    leg_state(ctl, runtime, make.call_id, CallState.DISCONNECTED, 200)
    assert runtime.sent == [Hangup(caller_leg)]
    assert len(callbacks(database)) == 2


def test_a_transfer_that_fails_reports_the_sip_status(
    app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str]
) -> None:
    call_id, _ = call
    recorder = use_recorder(app)
    acs_a.post(
        f"/calling/callConnections/{call_id}:transferToParticipant?{CALLING}", {"targetParticipant": PSTN}
    )
    leg_id = recorder.sent[0][1].call_id
    ctl, runtime = controller(database), FakeRuntime()
    leg_state(ctl, runtime, leg_id, CallState.DISCONNECTED, 486)
    events = _parsed(database)
    assert [kind for kind, _ in events] == ["CallTransferFailed"]
    assert events[0][1]["resultInformation"]["sipDetails"]["code"] == 486


def test_transfer_by_refer_when_the_trunk_takes_it(
    app: FastAPI, acs_a: AcsClient, database: Database, resource_a: dict[str, Any]
) -> None:
    own_voice_number(database, resource_a["id"], APP_NUMBER, "inbound+outbound")
    operator_trunks(database, refer=True)
    recorder = use_recorder(app)
    ctl, runtime = controller(database), FakeRuntime()
    body = {"targetParticipant": PSTN, "operationContext": "refer"}

    accepted_id, accepted_leg = connected_call(database, resource_a["id"])
    acs_a.post(f"/calling/callConnections/{accepted_id}:transferToParticipant?{CALLING}", body)
    assert recorder.sent == [(PROCESS, Transfer(accepted_leg, f"sip:{OTHER}@127.0.0.1"))]
    worker_event(ctl, runtime, TransferProgress(accepted_leg, 100, False))
    assert callbacks(database) == []
    worker_event(ctl, runtime, TransferProgress(accepted_leg, 200, True))
    events = _parsed(database)
    assert [kind for kind, _ in events] == ["CallTransferAccepted", "CallDisconnected"]
    assert events[0][1]["operationContext"] == "refer"
    assert events[0][1]["transferTarget"]["rawId"] == f"4:{OTHER}"
    assert runtime.sent == [Hangup(accepted_leg)]  # the transferor's BYE
    leg_state(ctl, runtime, accepted_leg, CallState.DISCONNECTED, 200)
    assert len(callbacks(database)) == 2

    refused_id, refused_leg = connected_call(database, resource_a["id"])
    acs_a.post(f"/calling/callConnections/{refused_id}:transferToParticipant?{CALLING}", body)
    worker_event(ctl, runtime, TransferProgress(refused_leg, 405, True, "Method Not Allowed"))
    fallback = runtime.sent[-1]
    assert isinstance(fallback, MakeCall)
    assert fallback.bridge_with == refused_leg
    assert len(callbacks(database)) == 2  # no failure: the transfer goes on, on a new leg
    leg_state(ctl, runtime, fallback.call_id, CallState.CONNECTED)
    assert [kind for kind, _ in callbacks(database)][2:] == ["CallTransferAccepted", "CallDisconnected"]

    failed_id, failed_leg = connected_call(database, resource_a["id"])
    acs_a.post(f"/calling/callConnections/{failed_id}:transferToParticipant?{CALLING}", body)
    worker_event(ctl, runtime, TransferProgress(failed_leg, 603, True, "Decline"))
    assert _parsed(database)[-1][0] == "CallTransferFailed"
    assert callbacks(database)[-1][1]["resultInformation"]["sipDetails"]["code"] == 603
    acs_a.post(f"/calling/callConnections/{failed_id}:transferToParticipant?{CALLING}", body)
    worker_event(ctl, runtime, CommandFailed(failed_leg, "Transfer", "no such call"))
    assert callbacks(database)[-1][0] == "CallTransferFailed"
    assert callbacks(database)[-1][1]["resultInformation"]["code"] == 500


def test_errors_in_acs_shape(
    app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str], resource_a: dict[str, Any]
) -> None:
    call_id, _ = call
    use_recorder(app)
    assert_acs_error(_add(acs_a, "no-such-call"), 404, "CallNotFound")
    bad = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:add?{CALLING}",
        {"participantToAdd": {"rawId": "8:acs:someone"}, "sourceCallerIdNumber": {"value": APP_NUMBER}},
    )
    assert_acs_error(bad, 400, target="participantToAdd")
    foreign = acs_a.post(
        f"/calling/callConnections/{call_id}/participants:add?{CALLING}",
        {"participantToAdd": PSTN, "sourceCallerIdNumber": {"value": "+14255550999"}},
    )
    assert_acs_error(foreign, 403, "Forbidden", "sourceCallerIdNumber")
    assert_acs_error(
        _add(acs_a, call_id, invitationTimeoutInSeconds=500), 400, target="invitationTimeoutInSeconds"
    )
    dialing_id, _ = connected_call(database, resource_a["id"], state="dialing")
    assert_acs_error(_add(acs_a, dialing_id), 400, "CallNotConnected")
    assert legs_of(database, call_id)[1:] == []  # nothing half-written


def test_a_third_party_is_bridged_with_every_party(
    app: FastAPI, acs_a: AcsClient, database: Database, call: tuple[str, str]
) -> None:
    call_id, caller_leg = call
    recorder = use_recorder(app)
    _add(acs_a, call_id)
    _add(acs_a, call_id, participantToAdd={"rawId": "4:+15557770002"})
    first, second = (command.call_id for _, command in recorder.sent)
    ctl, runtime = controller(database), FakeRuntime()
    leg_state(ctl, runtime, first, CallState.CONNECTED)
    assert runtime.sent == []  # bridged with the caller by bridge_with already
    leg_state(ctl, runtime, second, CallState.CONNECTED)
    assert runtime.sent == [Bridge(second, first)]
    updated = [data for kind, data in callbacks(database) if kind == "ParticipantsUpdated"]
    assert [u["sequenceNumber"] for u in updated] == [1, 2]
    assert len(updated[-1]["participants"]) == 3
    del caller_leg
