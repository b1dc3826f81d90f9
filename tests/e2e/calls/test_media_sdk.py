"""Call media end to end with the official client: SIPp calls in and presses a PIN as RFC 2833
telephone-events; the app answers, recognizes the PIN behind a spoken prompt (and every key with
continuous recognition), plays, sends DTMF,
holds and unholds, cancels a looping play, and is refused speech recognition. Every callback is
checked as the app receives it (JWT, CloudEvents) and read by the SDK's event models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.communication.callautomation import (
    DtmfTone,
    PhoneNumberIdentifier,
    RecognizeInputType,
    TextSource,
)
from azure.communication.callautomation._generated import models as sdk
from azure.core.exceptions import HttpResponseError

from tests.e2e.calls.conftest import NUMBER, VoiceStack, wait
from tests.sip.support import HOST, Sipp

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

SCENARIO = Path(__file__).parent / "scenarios" / "caller_enters_pin.xml"
CALLER = PhoneNumberIdentifier("+15551230000")
PREFIX = "Microsoft.Communication."


def callback(stack: VoiceStack, call_id: str, event_type: str, context: str) -> Any:
    """The callback ``event_type`` of the operation ``context``, once it came, as the SDK reads it."""

    def find() -> Any:
        with stack.app.lock:
            for event in stack.app.callbacks:
                data = event.data or {}
                if (
                    event.type == PREFIX + event_type
                    and data["callConnectionId"] == call_id
                    and data.get("operationContext") == context
                ):
                    return data
        return None

    data = wait(find, 30, what=f"{event_type} of {context}")
    return getattr(sdk, event_type).deserialize(data)


def keys(stack: VoiceStack, call_id: str) -> list[tuple[str, int]]:
    with stack.app.lock:
        return [
            (event.data["tone"], event.data["sequenceId"])
            for event in stack.app.callbacks
            if event.type == PREFIX + "ContinuousDtmfRecognitionToneReceived"
            and event.data["callConnectionId"] == call_id
        ]


def test_an_ivr_with_the_official_client(stack: VoiceStack, tmp_path: Path) -> None:
    app = stack.app
    assert app.client is not None
    answered: list[Any] = []

    def answer(event: dict[str, Any]) -> None:
        assert app.client is not None
        answered.append(app.client.answer_call(event["incomingCallContext"], app.callback_url))

    app.on_incoming = answer
    sipp = Sipp(
        tmp_path, SCENARIO, "-s", NUMBER, "-d", "15000", "-timeout", "60s", target=f"{HOST}:{stack.sip_port}"
    )
    try:
        wait(lambda: answered, 20, what="the SDK's answer_call")
        call_id = answered[0].call_connection_id
        wait(lambda: PREFIX + "CallConnected" in app.callback_types(call_id), 20, what="CallConnected")
        connection = app.client.get_call_connection(call_id)

        # The caller presses 1 4 7 # six seconds in: a PIN behind a prompt it may interrupt, and
        # every key as it comes.
        connection.start_continuous_dtmf_recognition(CALLER, operation_context="keys")
        connection.start_recognizing_media(
            RecognizeInputType.DTMF,
            CALLER,
            play_prompt=TextSource(text="Please enter your PIN, then press pound."),
            interrupt_prompt=True,
            initial_silence_timeout=20,
            dtmf_max_tones_to_collect=6,
            dtmf_stop_tones=[DtmfTone.POUND],
            operation_context="pin",
        )
        recognized = callback(stack, call_id, "RecognizeCompleted", "pin")
        assert recognized.recognition_type == "dtmf"
        assert recognized.dtmf_result.tones == ["one", "four", "seven"], (recognized, keys(stack, call_id))
        assert (recognized.result_information.code, recognized.result_information.sub_code) == (200, 8514)

        last_key = callback(stack, call_id, "ContinuousDtmfRecognitionToneReceived", "keys")
        wait(lambda: len(keys(stack, call_id)) == 4, 10, what="four keys")
        assert keys(stack, call_id) == [("one", 1), ("four", 2), ("seven", 3), ("pound", 4)]
        assert last_key.result_information.code == 200
        connection.stop_continuous_dtmf_recognition(CALLER, operation_context="keys-off")
        callback(stack, call_id, "ContinuousDtmfRecognitionStopped", "keys-off")

        connection.play_media(TextSource(text="Thank you."), operation_context="thanks")
        assert callback(stack, call_id, "PlayStarted", "thanks").result_information.code == 200
        assert callback(stack, call_id, "PlayCompleted", "thanks").result_information.code == 200

        sent = connection.send_dtmf_tones([DtmfTone.ONE, DtmfTone.TWO], CALLER, operation_context="dtmf")
        assert sent.operation_context == "dtmf"
        callback(stack, call_id, "SendDtmfTonesCompleted", "dtmf")

        connection.hold(CALLER, operation_context="hold")
        connection.unhold(CALLER, operation_context="unhold")

        connection.play_media(TextSource(text="Please hold the line."), loop=True, operation_context="loop")
        callback(stack, call_id, "PlayStarted", "loop")
        connection.cancel_all_media_operations()
        canceled = callback(stack, call_id, "PlayCanceled", "loop")
        assert (canceled.result_information.code, canceled.result_information.sub_code) == (400, 8508)

        with pytest.raises(HttpResponseError) as refused:
            connection.start_recognizing_media(RecognizeInputType.SPEECH, CALLER, operation_context="speech")
        assert refused.value.status_code == 400
        assert "speech engine" in str(refused.value)

        assert PREFIX + "HoldFailed" not in app.callback_types(call_id)
        wait(lambda: PREFIX + "CallDisconnected" in app.callback_types(call_id), 40, what="CallDisconnected")
        assert sipp.wait() == 0, sipp.errors()
        assert not app.errors, app.errors
    finally:
        sipp.kill()
