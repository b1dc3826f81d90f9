"""Several parties end to end with the official ``CallAutomationClient``: add, mute, remove and
cancel a participant and transfer a call, each party a SIPp callee behind its own operator
route, through real ``trunkline api``/``worker``/``sip`` processes (one pjsua2 worker).

What these prove is the signalling and the events: every leg is placed, answered, cancelled and
ended as the SIPp scenarios check, and the callbacks arrive in ACS's order. That the bridged
legs hear each other needs the worker's Bridge (branch media-worker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.communication.callautomation import PhoneNumberIdentifier
from azure.core.exceptions import HttpResponseError

from tests.e2e.calls.conftest import CALLER, VoiceStack
from tests.e2e.calls.test_outbound_calls import Carrier, callback, create_call
from tests.sip.support import HOST, SCENARIOS, Sipp

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(240)]

HERE = Path(__file__).parent / "scenarios"


@pytest.fixture
def carriers(stack: VoiceStack, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[Carrier]]:
    """Four routes, one per party: the callee of the call, then three more."""
    base = abs(hash(request.node.name)) % 1000
    made = [Carrier(stack, tmp_path, f"+1556{base:03d}{index}") for index in range(4)]
    yield made
    for carrier in made:
        carrier.close()


def _party(carrier: Carrier, scenario: Path) -> tuple[Any, str]:
    sipp = carrier.callee(scenario)
    carrier.route()
    return sipp, carrier.prefix + "01"


def _events(stack: VoiceStack, call_id: str) -> list[str]:
    return [kind.rsplit(".", 1)[-1] for kind in stack.app.callback_types(call_id)]


def test_add_mute_remove_and_cancel_participants(stack: VoiceStack, carriers: list[Carrier]) -> None:
    callee, target = _party(carriers[0], SCENARIOS / "callee.xml")
    added_sipp, added = _party(carriers[1], SCENARIOS / "callee.xml")
    ringing_sipp, ringing = _party(carriers[2], HERE / "callee_rings.xml")
    call_id = create_call(stack, target, "parties").call_connection_id
    callback(stack, call_id, "CallConnected")
    assert stack.app.client is not None
    connection = stack.app.client.get_call_connection(call_id)

    result = connection.add_participant(
        PhoneNumberIdentifier(added),
        source_caller_id_number=PhoneNumberIdentifier(CALLER),
        operation_context="add",
        invitation_timeout=30,
    )
    assert result.operation_context == "add"
    assert result.invitation_id
    succeeded = callback(stack, call_id, "AddParticipantSucceeded")
    assert succeeded.data["participant"]["rawId"] == f"4:{added}"
    assert succeeded.data["operationContext"] == "add"
    updated = callback(stack, call_id, "ParticipantsUpdated")
    assert updated.data["sequenceNumber"] == 1
    assert {p.identifier.raw_id for p in connection.list_participants()} == {f"4:{target}", f"4:{added}"}

    muted = connection.mute_participant(PhoneNumberIdentifier(added), operation_context="mute")
    assert muted.operation_context == "mute"
    assert connection.get_participant(PhoneNumberIdentifier(added)).is_muted is True

    removed = connection.remove_participant(PhoneNumberIdentifier(added), operation_context="remove")
    assert removed.operation_context == "remove"
    callback(stack, call_id, "RemoveParticipantSucceeded")
    assert added_sipp.wait() == 0, added_sipp.errors()  # it got the BYE
    assert [p.identifier.raw_id for p in connection.list_participants()] == [f"4:{target}"]

    invited = connection.add_participant(
        PhoneNumberIdentifier(ringing), source_caller_id_number=PhoneNumberIdentifier(CALLER)
    )
    cancelled = connection.cancel_add_participant_operation(invited.invitation_id, operation_context="cancel")
    assert cancelled.invitation_id == invited.invitation_id
    callback(stack, call_id, "CancelAddParticipantSucceeded")
    failed = callback(stack, call_id, "AddParticipantFailed")
    assert failed.data["resultInformation"]["code"] == 487
    kinds = _events(stack, call_id)
    assert kinds.index("CancelAddParticipantSucceeded") < kinds.index("AddParticipantFailed")
    assert ringing_sipp.wait() == 0, ringing_sipp.errors()

    with pytest.raises(HttpResponseError) as refused:
        connection.add_participant(
            PhoneNumberIdentifier(added), source_caller_id_number=PhoneNumberIdentifier("+14255550100")
        )
    assert refused.value.status_code == 403
    with pytest.raises(HttpResponseError) as missing:
        connection.remove_participant(PhoneNumberIdentifier("+19995550000"))
    assert missing.value.status_code == 404

    connection.hang_up(is_for_everyone=True)
    callback(stack, call_id, "CallDisconnected")
    assert callee.wait() == 0, callee.errors()
    assert not stack.app.errors, stack.app.errors


def test_transfer_on_a_new_leg_then_the_target_hangs_up(stack: VoiceStack, carriers: list[Carrier]) -> None:
    callee, target = _party(carriers[0], SCENARIOS / "callee.xml")
    transfer_sipp, transfer_to = _party(carriers[1], HERE / "callee_hangs_up.xml")
    call_id = create_call(stack, target, "transfer").call_connection_id
    callback(stack, call_id, "CallConnected")
    assert stack.app.client is not None
    connection = stack.app.client.get_call_connection(call_id)
    result = connection.transfer_call_to_participant(
        PhoneNumberIdentifier(transfer_to), operation_context="xfer"
    )
    assert result.operation_context == "xfer"
    accepted = callback(stack, call_id, "CallTransferAccepted")
    assert accepted.data["transferTarget"]["rawId"] == f"4:{transfer_to}"
    assert accepted.data["transferee"]["rawId"] == f"4:{target}"
    callback(stack, call_id, "CallDisconnected")
    kinds = _events(stack, call_id)
    assert kinds.index("CallTransferAccepted") < kinds.index("CallDisconnected")
    # the target hangs up after a moment: the transferred party's leg goes with it
    assert transfer_sipp.wait() == 0, transfer_sipp.errors()
    assert callee.wait() == 0, callee.errors()
    assert not stack.app.errors, stack.app.errors


def test_transfer_by_refer_on_a_trunk_that_takes_it(stack: VoiceStack, tmp_path: Path) -> None:
    carrier = Carrier(stack, tmp_path, f"+1558{abs(hash(tmp_path.name)) % 10000:04d}")
    directory = tmp_path / "refer-callee"
    directory.mkdir()
    callee = Sipp(directory, SCENARIOS / "callee_refer.xml")  # wants Refer-To +15559990000
    carrier.callees.append(callee)
    done = stack.cli("sip", "trunk", "add", f"refer-{carrier.prefix.lstrip('+')}", "--carrier",
                     "voice-test-carrier", "--host", HOST, "--port", str(callee.port), "--refer")  # fmt: skip
    assert done.returncode == 0, done.stderr
    carrier.trunks.append(f"refer-{carrier.prefix.lstrip('+')}")
    carrier.route()
    try:
        call_id = create_call(stack, carrier.prefix + "01", "refer").call_connection_id
        callback(stack, call_id, "CallConnected")
        assert stack.app.client is not None
        connection = stack.app.client.get_call_connection(call_id)
        connection.transfer_call_to_participant(
            PhoneNumberIdentifier("+15559990000"), operation_context="refer"
        )
        accepted = callback(stack, call_id, "CallTransferAccepted")
        assert accepted.data["operationContext"] == "refer"
        disconnected = callback(stack, call_id, "CallDisconnected")
        assert disconnected.data["resultInformation"]["subCode"] == 7015
        assert callee.wait() == 0, callee.errors()  # REFER, NOTIFYs, then our BYE
        assert "transferring on a new leg" not in stack.log("sip")
        assert not stack.app.errors, stack.app.errors
    finally:
        carrier.close()


def test_a_refused_refer_falls_back_to_a_bridged_leg(stack: VoiceStack, tmp_path: Path) -> None:
    """The trunk is set to take REFER but the carrier answers 405: the transfer goes on, on a new
    leg to the target (through the routes), bridged with the transferee."""
    carrier = Carrier(stack, tmp_path, f"+1559{abs(hash(tmp_path.name)) % 10000:04d}")
    target_carrier = Carrier(stack, tmp_path, "+1555999")
    scenario = tmp_path / "callee_refer_405.xml"
    refused = (
        (SCENARIOS / "callee_refer_refused.xml")
        .read_text()
        .replace("{refer_status}", "405 Method Not Allowed")
    )
    scenario.write_text(refused)
    directory = tmp_path / "refer-405"
    directory.mkdir()
    callee = Sipp(directory, scenario)
    carrier.callees.append(callee)
    name = f"refer-{carrier.prefix.lstrip('+')}"
    done = stack.cli("sip", "trunk", "add", name, "--carrier", "voice-test-carrier", "--host", HOST,
                     "--port", str(callee.port), "--refer")  # fmt: skip
    assert done.returncode == 0, done.stderr
    carrier.trunks.append(name)
    carrier.route()
    target = target_carrier.callee(HERE / "callee_hangs_up.xml")
    target_carrier.route()
    try:
        call_id = create_call(stack, carrier.prefix + "01", "refer-405").call_connection_id
        callback(stack, call_id, "CallConnected")
        assert stack.app.client is not None
        connection = stack.app.client.get_call_connection(call_id)
        connection.transfer_call_to_participant(PhoneNumberIdentifier("+15559990000"), operation_context="x")
        accepted = callback(stack, call_id, "CallTransferAccepted")
        assert accepted.data["transferTarget"]["rawId"] == "4:+15559990000"
        callback(stack, call_id, "CallDisconnected")
        assert "CallTransferFailed" not in " ".join(stack.app.callback_types(call_id))
        assert target.wait() == 0, target.errors()  # answered, then hung up
        assert callee.wait() == 0, callee.errors()  # its leg went with the target's: our BYE
        assert "transferring on a new leg" in stack.log("sip")
    finally:
        carrier.close()
        target_carrier.close()
