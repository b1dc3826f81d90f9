"""Inbound PSTN calls end to end: SIPp as the carrier, real ``trunkline api``/``worker``/``sip``
processes, and an app on the official ``CallAutomationClient`` answering from its webhook."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.calls.conftest import NUMBER, OTHER_NUMBER, VoiceStack, wait
from tests.sip.support import HOST, SCENARIOS, Sipp
from tests.sip.worker.test_ua import refused_scenario

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

CALLING = "2026-03-12"
CONNECTED = "Microsoft.Communication.CallConnected"


def carrier(stack: VoiceStack, tmp_path: Path, scenario: Path, number: str, *args: str) -> Sipp:
    return Sipp(tmp_path, scenario, "-s", number, *args, target=f"{HOST}:{stack.sip_port}")


def incoming_for(stack: VoiceStack, count: int) -> dict[str, Any]:
    wait(lambda: len(stack.app.incoming) >= count, 20, what="the IncomingCall event")
    return stack.app.incoming[count - 1]


def test_inbound_call_answered_by_the_sdk_connects_with_rtp_both_ways_then_far_end_bye(
    stack: VoiceStack, tmp_path: Path
) -> None:
    app = stack.app
    answered: list[Any] = []

    def answer(event: dict[str, Any]) -> None:
        assert app.client is not None
        answered.append(
            app.client.answer_call(event["incomingCallContext"], app.callback_url, operation_context="op-1")
        )

    app.on_incoming = answer
    before = len(app.incoming)
    packets = stack.rtp_packets()
    sipp = carrier(stack, tmp_path, SCENARIOS / "carrier_call_pcap.xml", NUMBER, "-d", "4000")
    try:
        event = incoming_for(stack, before + 1)
        assert event["to"] == {
            "kind": "phoneNumber",
            "rawId": f"4:{NUMBER}",
            "phoneNumber": {"value": NUMBER},
        }
        assert event["from"]["rawId"] == "4:+15551230000"
        assert event["callerDisplayName"] == "Carrier Caller"
        assert event["serverCallId"]
        assert event["correlationId"]
        assert event["incomingCallContext"]
        assert event["_subject"] == f"/caller/4:+15551230000/recipient/4:{NUMBER}"

        wait(lambda: answered, 20, what="the SDK's answer_call")
        properties = answered[0]
        call_id = properties.call_connection_id
        assert properties.server_call_id == event["serverCallId"]
        assert properties.callback_url == app.callback_url
        wait(
            lambda: "Microsoft.Communication.CallConnected" in app.callback_types(call_id),
            20,
            what="CallConnected",
        )
        connected = next(e for e in app.callbacks if e.type == "Microsoft.Communication.CallConnected")
        assert connected.data["callConnectionId"] == call_id
        assert connected.data["serverCallId"] == event["serverCallId"]
        assert connected.data["correlationId"] == event["correlationId"]
        assert connected.data["operationContext"] == "op-1"
        assert connected.source == f"calling/callConnections/{call_id}"

        def rtp_both_ways() -> bool:
            now = stack.rtp_packets()
            return all(now.get(d, 0) - packets.get(d, 0) >= 50 for d in ("received", "sent"))

        wait(rtp_both_ways, 10, what="RTP both ways at the worker")

        # another tenant cannot answer (or even see) the call
        other = stack.cli("resources", "create", "voice-e2e-other", "--json")
        assert other.returncode == 0, other.stderr
        with stack.http(json.loads(other.stdout)["primaryKey"]) as client:
            response = client.post(
                f"/calling/callConnections:answer?api-version={CALLING}",
                json={"incomingCallContext": event["incomingCallContext"], "callbackUri": app.callback_url},
            )
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "CallNotFound"
            assert client.get(f"/calling/callConnections/{call_id}?api-version={CALLING}").status_code == 404

        wait(
            lambda: "Microsoft.Communication.CallDisconnected" in app.callback_types(call_id),
            20,
            what="CallDisconnected after the carrier's BYE",
        )
        disconnected = next(
            e
            for e in app.callbacks
            if e.type == "Microsoft.Communication.CallDisconnected" and e.data["callConnectionId"] == call_id
        )
        assert disconnected.data["resultInformation"]["code"] == 200
        assert sipp.wait() == 0, sipp.errors()
        assert not app.errors, app.errors
    finally:
        sipp.kill()


def test_unanswered_call_rings_out_with_480_and_its_context_stops_working(
    stack: VoiceStack, tmp_path: Path
) -> None:
    before = len(stack.app.incoming)
    sipp = carrier(stack, tmp_path, refused_scenario(tmp_path, 480), NUMBER)
    try:
        event = incoming_for(stack, before + 1)
        assert sipp.wait(20) == 0, sipp.errors()  # 480 after the 4 s ring timeout
        with stack.http() as client:
            response = client.post(
                f"/calling/callConnections:answer?api-version={CALLING}",
                json={
                    "incomingCallContext": event["incomingCallContext"],
                    "callbackUri": stack.app.callback_url,
                },
            )
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "CallNotFound"
    finally:
        sipp.kill()


@pytest.mark.parametrize(("number", "status"), [("+14255550100", 404), (OTHER_NUMBER, 404)])
def test_a_number_that_takes_no_calls_gets_404(
    stack: VoiceStack, tmp_path: Path, number: str, status: int
) -> None:
    sipp = carrier(stack, tmp_path, refused_scenario(tmp_path, status), number)
    try:
        assert sipp.wait(20) == 0, sipp.errors()
    finally:
        sipp.kill()


@pytest.mark.parametrize(("reason", "status"), [("none", 480), ("busy", 486), ("forbidden", 403)])
def test_reject_by_the_sdk_refuses_the_call(
    stack: VoiceStack, tmp_path: Path, reason: str, status: int
) -> None:
    app = stack.app

    def reject(event: dict[str, Any]) -> None:
        assert app.client is not None
        app.client.reject_call(event["incomingCallContext"], call_reject_reason=reason)

    app.on_incoming = reject
    sipp = carrier(stack, tmp_path, refused_scenario(tmp_path, status), NUMBER)
    try:
        assert sipp.wait(20) == 0, sipp.errors()
    finally:
        sipp.kill()


def test_redirect_by_the_sdk_answers_302_with_the_target(stack: VoiceStack, tmp_path: Path) -> None:
    from azure.communication.callautomation import PhoneNumberIdentifier

    app = stack.app

    def redirect(event: dict[str, Any]) -> None:
        assert app.client is not None
        app.client.redirect_call(event["incomingCallContext"], PhoneNumberIdentifier("+14255550777"))

    app.on_incoming = redirect
    check = (
        '      <ereg regexp="sip:\\+14255550777@127\\.0\\.0\\.1" search_in="hdr" header="Contact:"'
        ' check_it="true" assign_to="contact"/>'
    )
    sipp = carrier(stack, tmp_path, refused_scenario(tmp_path, 302, check, "contact"), NUMBER)
    try:
        assert sipp.wait(20) == 0, sipp.errors()
    finally:
        sipp.kill()


def test_an_invite_from_an_address_no_trunk_allows_gets_403(stack: VoiceStack, tmp_path: Path) -> None:
    removed = stack.cli("sip", "trunk", "remove", "carrier1")
    assert removed.returncode == 0, removed.stderr
    try:
        time.sleep(2.5)  # the SIP process caches the trunks for 2 s
        sipp = carrier(stack, tmp_path, refused_scenario(tmp_path, 403), NUMBER)
        try:
            assert sipp.wait(20) == 0, sipp.errors()
        finally:
            sipp.kill()
    finally:
        added = stack.cli(
            "sip", "trunk", "add", "carrier1", "--carrier", "voice-test-carrier", "--host", "127.0.0.1"
        )
        assert added.returncode == 0, added.stderr
        time.sleep(2.5)
