"""The CallMedia_* API on SQLite and PostgreSQL: what a checked request sends to the SIP process
holding the call, and ACS's errors for a bad body, an unknown call and a call not connected."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.calls import repository, service
from gateway.calls.media_requests import Action, MediaRequest
from gateway.calls.models import Call, CallLeg
from gateway.calls.schemas import TrunkSpec
from gateway.core.db import Database, new_uuid
from gateway.core.settings import Settings
from gateway.events import subscriptions
from gateway.events.runtime import limits_from_settings, policy_from_settings
from gateway.numbers.models import Carrier
from tests.support.acs import OPERATOR_TOKEN, AcsClient, assert_acs_error

CALLER = "+15551230000"
APP_NUMBER = "+14255550123"
CALLER_ID = {"kind": "phoneNumber", "rawId": f"4:{CALLER}", "phoneNumber": {"value": CALLER}}
QUERY = "?api-version=2026-03-12"
FILE = {"kind": "file", "file": {"uri": "https://prompts.example.com/hello.wav"}}


@dataclass
class Recorder:
    """Stands in for the broker: what the API would publish, to which SIP process."""

    sent: list[tuple[str, MediaRequest]] = field(default_factory=list)

    def send_media(self, process: str, request: MediaRequest) -> None:
        self.sent.append((process, request))


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        operator_token=OPERATOR_TOKEN,
        api_host="testserver",
        api_port=443,
        webhook_allowed_networks=["127.0.0.0/8"],
    )


@pytest.fixture
def recorder(app: FastAPI) -> Recorder:
    recorder = Recorder()
    app.state.call_commands = recorder
    return recorder


def add_call(
    database: Database, settings: Settings, resource_id: str, state: str = "connected", remote: str = ""
) -> Call:
    with database.session() as session:
        subscription_id = subscriptions.callback_subscription_id(
            session,
            resource_id,
            "https://127.0.0.1:9/callbacks",
            policy_from_settings(settings),
            limits_from_settings(settings),
        )
        call = Call(
            id=new_uuid(),
            resource_id=resource_id,
            direction="inbound",
            state=state,
            server_call_id="c2VydmVy",
            correlation_id=new_uuid(),
            source_number=CALLER,
            target_number=APP_NUMBER,
            callback_uri="https://127.0.0.1:9/callbacks",
            callback_subscription_id=subscription_id,
            sip_process="sip-1",
        )
        leg = CallLeg(
            id="leg" + new_uuid().replace("-", ""),
            call_id=call.id,
            sip_process="sip-1",
            number=CALLER,
            remote=remote,
        )
        repository.add_call(session, call, leg)
        session.flush()
        session.expunge(call)
    return call


@pytest.fixture
def call(database: Database, settings: Settings, resource_a: dict[str, Any], recorder: Recorder) -> Call:
    return add_call(database, settings, resource_a["id"])


def media(acs: AcsClient, call_id: str, action: str, body: Any = None) -> httpx.Response:
    return acs.post(f"/calling/callConnections/{call_id}:{action}{QUERY}", body if body is not None else {})


def test_play_is_accepted_and_sent_to_the_process_holding_the_call(
    acs_a: AcsClient, call: Call, recorder: Recorder
) -> None:
    body = {
        "playSources": [FILE],
        "playTo": [CALLER_ID],
        "playOptions": {"loop": True},
        "interruptCallMediaOperation": True,
        "operationContext": "menu",
    }
    response = media(acs_a, call.id, "play", body)
    assert response.status_code == 202, response.text
    [(process, request)] = recorder.sent
    assert process == "sip-1"
    assert request.action is Action.PLAY
    assert request.call_id == call.id
    assert request.leg_id.startswith("leg")
    assert request.sources == (FILE,)
    assert request.loop
    assert request.interrupt
    assert request.operation_context == "menu"
    assert request.subscription_id == call.callback_subscription_id
    assert request.server_call_id == call.server_call_id


def test_an_operation_callback_uri_gets_its_own_subscription(
    acs_a: AcsClient, call: Call, recorder: Recorder
) -> None:
    body = {"playSources": [FILE], "operationCallbackUri": "https://127.0.0.1:9/other"}
    assert media(acs_a, call.id, "play", body).status_code == 202
    request = recorder.sent[0][1]
    assert request.subscription_id not in (None, call.callback_subscription_id)
    refused = media(acs_a, call.id, "play", {"playSources": [FILE], "operationCallbackUri": "ftp://x"})
    assert_acs_error(refused, 400, target="operationCallbackUri")


def test_recognize_dtmf_carries_its_options(acs_a: AcsClient, call: Call, recorder: Recorder) -> None:
    body = {
        "recognizeInputType": "dtmf",
        "playPrompt": FILE,
        "recognizeOptions": {
            "targetParticipant": CALLER_ID,
            "interruptPrompt": True,
            "initialSilenceTimeoutInSeconds": 7,
            "dtmfOptions": {"maxTonesToCollect": 4, "interToneTimeoutInSeconds": 3, "stopTones": ["pound"]},
        },
    }
    assert media(acs_a, call.id, "recognize", body).status_code == 202
    request = recorder.sent[0][1]
    assert (request.max_tones, request.inter_tone_timeout, request.initial_silence_timeout) == (4, 3, 7)
    assert request.stop_tones == "#"
    assert request.interrupt_prompt
    assert request.sources == (FILE,)


@pytest.mark.parametrize("mode", ["inband", "rfc2833"])
def test_what_listens_for_digits_carries_its_trunks_dtmf_mode(
    acs_a: AcsClient,
    database: Database,
    settings: Settings,
    resource_a: dict[str, Any],
    recorder: Recorder,
    mode: str,
) -> None:
    """The caller came in through a trunk: its ``dtmf`` goes with a recognize and continuous
    recognition (the worker decides from it whether to tap the audio), not with a play."""
    with database.session() as session:
        session.add(Carrier(name="acme", kind="sip"))
        session.flush()
        service.add_trunk(session, TrunkSpec(name="acme-1", carrier="acme", host="192.0.2.10", dtmf=mode))
    call = add_call(database, settings, resource_a["id"], remote="192.0.2.10:5060")
    recognize = {"recognizeInputType": "dtmf", "recognizeOptions": {"targetParticipant": CALLER_ID}}
    assert media(acs_a, call.id, "recognize", recognize).status_code == 202
    assert media(acs_a, call.id, "startContinuousDtmfRecognition", recognize["recognizeOptions"]).is_success
    assert media(acs_a, call.id, "play", {"playSources": [FILE]}).status_code == 202
    assert [request.dtmf_mode for _, request in recorder.sent] == [mode, mode, ""]


def test_a_call_through_no_operator_trunk_listens_in_auto_mode(
    acs_a: AcsClient, call: Call, recorder: Recorder
) -> None:
    recognize = {"recognizeInputType": "dtmf", "recognizeOptions": {"targetParticipant": CALLER_ID}}
    assert media(acs_a, call.id, "recognize", recognize).status_code == 202
    assert recorder.sent[0][1].dtmf_mode == "auto"


@pytest.mark.parametrize("kind", ["speech", "speechOrDtmf", "choices"])
def test_recognizing_speech_or_choices_is_a_clear_400(
    acs_a: AcsClient, call: Call, recorder: Recorder, kind: str
) -> None:
    body = {"recognizeInputType": kind, "recognizeOptions": {"targetParticipant": CALLER_ID}}
    error = assert_acs_error(media(acs_a, call.id, "recognize", body), 400, target="recognizeInputType")
    assert "speech engine" in error["message"]
    assert recorder.sent == []


@pytest.mark.parametrize(
    ("action", "body", "target"),
    [
        ("play", {}, "playSources"),
        ("play", {"playSources": [{"kind": "video"}]}, "playSources[0].kind"),
        ("play", {"playSources": [FILE], "playTo": [{"rawId": "4:+19999999999"}]}, "playTo[0]"),
        ("play", {"playSources": [FILE], "playOptions": {"loop": "yes"}}, "playOptions.loop"),
        ("recognize", {"recognizeInputType": "dtmf"}, "recognizeOptions"),
        (
            "recognize",
            {"recognizeInputType": "dtmf", "recognizeOptions": {}},
            "recognizeOptions.targetParticipant",
        ),
        (
            "recognize",
            {
                "recognizeInputType": "dtmf",
                "recognizeOptions": {"targetParticipant": CALLER_ID, "dtmfOptions": {"maxTonesToCollect": 0}},
            },
            "recognizeOptions.dtmfOptions.maxTonesToCollect",
        ),
        (
            "recognize",
            {
                "recognizeInputType": "dtmf",
                "recognizeOptions": {"targetParticipant": CALLER_ID, "dtmfOptions": {"stopTones": ["hash"]}},
            },
            "recognizeOptions.dtmfOptions.stopTones[0]",
        ),
        ("sendDtmfTones", {"targetParticipant": CALLER_ID, "tones": ["one", "eleven"]}, "tones[1]"),
        ("sendDtmfTones", {"targetParticipant": CALLER_ID, "tones": []}, "tones"),
        ("sendDtmfTones", {"tones": ["one"]}, "targetParticipant"),
        (
            "hold",
            {"targetParticipant": CALLER_ID, "playSourceInfo": {"kind": "file"}},
            "playSourceInfo.file",
        ),
        ("startContinuousDtmfRecognition", {}, "targetParticipant"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field_and_sends_nothing(
    acs_a: AcsClient, call: Call, recorder: Recorder, action: str, body: Any, target: str
) -> None:
    assert_acs_error(media(acs_a, call.id, action, body), 400, target=target)
    assert recorder.sent == []


def test_send_dtmf_answers_its_operation_context(acs_a: AcsClient, call: Call, recorder: Recorder) -> None:
    body = {"targetParticipant": CALLER_ID, "tones": ["one", "pound", "a"], "operationContext": "pin"}
    response = media(acs_a, call.id, "sendDtmfTones", body)
    assert response.status_code == 202, response.text
    assert response.json() == {"operationContext": "pin"}
    assert recorder.sent[0][1].tones == "1#A"


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("hold", 200),
        ("unhold", 200),
        ("startContinuousDtmfRecognition", 200),
        ("stopContinuousDtmfRecognition", 200),
        ("cancelAllMediaOperations", 202),
    ],
)
def test_the_other_operations_answer_as_acs_does(
    acs_a: AcsClient, call: Call, recorder: Recorder, action: str, status: int
) -> None:
    body = {} if action == "cancelAllMediaOperations" else {"targetParticipant": CALLER_ID}
    response = media(acs_a, call.id, action, body)
    assert response.status_code == status, response.text
    assert recorder.sent[0][1].action.value == action


def test_an_unknown_or_foreign_call_is_404_and_a_call_not_connected_400(
    acs_a: AcsClient,
    acs_b: AcsClient,
    call: Call,
    recorder: Recorder,
    database: Database,
    settings: Settings,
    resource_a: dict[str, Any],
) -> None:
    play = {"playSources": [FILE]}
    assert_acs_error(media(acs_a, "nope", "play", play), 404, "CallNotFound")
    assert_acs_error(media(acs_b, call.id, "play", play), 404, "CallNotFound")
    dialing = add_call(database, settings, resource_a["id"], state="dialing")
    assert_acs_error(media(acs_a, dialing.id, "play", play), 400, "CallNotEstablished")
    ended = add_call(database, settings, resource_a["id"], state="ended")
    assert_acs_error(media(acs_a, ended.id, "play", play), 404, "CallNotFound")
    assert recorder.sent == []


def test_a_participant_the_app_added_is_a_target_once_answered(
    acs_a: AcsClient, call: Call, recorder: Recorder, database: Database
) -> None:
    other = "+15557654321"
    with database.session() as session:
        for state, suffix in (("connected", "ok"), ("placing", "ringing")):
            leg = CallLeg(
                id=f"party-{suffix}-" + new_uuid()[:8],
                call_id=call.id,
                sip_process="sip-1",
                number=other if state == "connected" else "+15550000001",
                role="participant",
                state=state,
            )
            repository.add_leg(session, leg)
    target = {"kind": "phoneNumber", "rawId": f"4:{other}", "phoneNumber": {"value": other}}
    body = {"targetParticipant": target, "tones": ["nine"]}
    assert media(acs_a, call.id, "sendDtmfTones", body).status_code == 202
    assert recorder.sent[-1][1].leg_id.startswith("party-ok-")
    played = media(acs_a, call.id, "play", {"playSources": [FILE], "playTo": [target]})
    assert played.status_code == 202
    assert recorder.sent[-1][1].leg_id.startswith("party-ok-")
    assert media(acs_a, call.id, "play", {"playSources": [FILE]}).status_code == 202
    assert recorder.sent[-1][1].leg_id.startswith("leg")  # to all: the call's own party
    ringing = {"rawId": "4:+15550000001"}
    refused = media(acs_a, call.id, "sendDtmfTones", {"targetParticipant": ringing, "tones": ["one"]})
    assert_acs_error(refused, 400, "ParticipantNotFound", "targetParticipant")
