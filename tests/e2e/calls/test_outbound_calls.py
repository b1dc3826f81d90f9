"""Outbound calls and call connections end to end: the app creates calls with the official
``CallAutomationClient``, SIPp is the carrier's callee (UAS) behind operator trunks and routes,
and real ``trunkline api``/``worker``/``sip`` processes carry them."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.communication.callautomation import PhoneNumberIdentifier
from azure.core.exceptions import HttpResponseError

from tests.e2e.calls.conftest import CALLER, NUMBER, UNHEARD_NUMBER, VoiceStack, wait
from tests.sip.support import HOST, SCENARIOS, Sipp
from tests.sip.worker.test_ua import refused_scenario

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

CALLING = "2026-03-12"
HERE = Path(__file__).parent / "scenarios"
PREFIX = "Microsoft.Communication."


class Carrier:
    """SIPp callees, each behind an operator trunk; a route of ``prefix`` over them, in order."""

    def __init__(self, stack: VoiceStack, tmp_path: Path, prefix: str) -> None:
        self.stack, self.tmp_path, self.prefix = stack, tmp_path, prefix
        self.trunks: list[str] = []
        self.callees: list[Sipp] = []

    def callee(self, scenario: Path) -> Sipp:
        name = f"callee{len(self.trunks)}-{self.prefix.lstrip('+')}"
        directory = self.tmp_path / name
        directory.mkdir()
        sipp = Sipp(directory, scenario)
        self.callees.append(sipp)
        self._cli("sip", "trunk", "add", name, "--carrier", "voice-test-carrier", "--host", HOST,
                  "--port", str(sipp.port), "--allow", "127.0.0.2/32")  # fmt: skip
        self.trunks.append(name)
        return sipp

    def route(self) -> None:
        self._cli("sip", "route", "add", "--prefix", self.prefix, *(f"--trunk={t}" for t in self.trunks))

    def _cli(self, *args: str) -> None:
        done = self.stack.cli(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)

    def close(self) -> None:
        for sipp in self.callees:
            sipp.kill()
        self.stack.cli("sip", "route", "remove", "--prefix", self.prefix)
        for trunk in self.trunks:
            self.stack.cli("sip", "trunk", "remove", trunk)


@pytest.fixture
def carrier(stack: VoiceStack, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Carrier]:
    prefix = f"+1555{abs(hash(request.node.name)) % 10000:04d}"
    made = Carrier(stack, tmp_path, prefix)
    yield made
    made.close()


def create_call(stack: VoiceStack, target: str, context: str = "out") -> Any:
    assert stack.app.client is not None
    return stack.app.client.create_call(
        PhoneNumberIdentifier(target),
        stack.app.callback_url,
        source_caller_id_number=PhoneNumberIdentifier(CALLER),
        source_display_name="Trunkline App",
        operation_context=context,
    )


def callback(stack: VoiceStack, call_id: str, kind: str, timeout: float = 20) -> Any:
    wait(lambda: PREFIX + kind in stack.app.callback_types(call_id), timeout, what=kind)
    return next(
        e for e in stack.app.callbacks if e.type == PREFIX + kind and e.data["callConnectionId"] == call_id
    )


def test_create_call_connects_then_the_app_hangs_up(stack: VoiceStack, carrier: Carrier) -> None:
    callee = carrier.callee(SCENARIOS / "callee.xml")  # checks the caller id in From
    carrier.route()
    target = carrier.prefix + "001"
    properties = create_call(stack, target, "out-1")
    call_id = properties.call_connection_id
    assert properties.call_connection_state in ("connecting", "connected")
    assert properties.source_caller_id_number.raw_id == f"4:{CALLER}"
    assert [t.raw_id for t in properties.targets] == [f"4:{target}"]

    connected = callback(stack, call_id, "CallConnected")
    assert connected.data["operationContext"] == "out-1"
    assert connected.data["serverCallId"] == properties.server_call_id
    assert stack.app.client is not None
    connection = stack.app.client.get_call_connection(call_id)
    assert connection.get_call_properties().call_connection_state == "connected"
    participants = list(connection.list_participants())
    assert [p.identifier.raw_id for p in participants] == [f"4:{target}"]
    assert connection.get_participant(PhoneNumberIdentifier(target)).identifier.raw_id == f"4:{target}"
    with stack.http() as client:
        missing = client.get(
            f"/calling/callConnections/{call_id}/participants/4:+19999999999?api-version={CALLING}"
        )
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "ParticipantNotFound"

    other = stack.cli("resources", "create", f"voice-other-{call_id[:8]}", "--json")
    assert other.returncode == 0, other.stderr
    with stack.http(json.loads(other.stdout)["primaryKey"]) as client:
        for method, path in (
            ("GET", f"/calling/callConnections/{call_id}"),
            ("GET", f"/calling/callConnections/{call_id}/participants"),
            ("DELETE", f"/calling/callConnections/{call_id}"),
            ("POST", f"/calling/callConnections/{call_id}:terminate"),
        ):
            response = client.request(method, f"{path}?api-version={CALLING}")
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "CallNotFound"

    connection.hang_up(is_for_everyone=False)  # DELETE
    disconnected = callback(stack, call_id, "CallDisconnected")
    assert disconnected.data["resultInformation"]["code"] == 200
    assert callee.wait() == 0, callee.errors()
    with pytest.raises(HttpResponseError) as gone:
        connection.hang_up(is_for_everyone=True)  # :terminate on an ended call
    assert gone.value.status_code == 404
    assert not stack.app.errors, stack.app.errors


def test_terminate_ends_a_connected_call(stack: VoiceStack, carrier: Carrier) -> None:
    callee = carrier.callee(SCENARIOS / "callee.xml")
    carrier.route()
    call_id = create_call(stack, carrier.prefix + "002").call_connection_id
    callback(stack, call_id, "CallConnected")
    assert stack.app.client is not None
    stack.app.client.get_call_connection(call_id).hang_up(is_for_everyone=True)
    callback(stack, call_id, "CallDisconnected")
    assert callee.wait() == 0, callee.errors()


def test_a_busy_callee_ends_in_create_call_failed_with_the_sip_status(
    stack: VoiceStack, carrier: Carrier
) -> None:
    callee = carrier.callee(SCENARIOS / "callee_busy.xml")
    carrier.route()
    call_id = create_call(stack, carrier.prefix + "003").call_connection_id
    failed = callback(stack, call_id, "CreateCallFailed")
    result = failed.data["resultInformation"]
    assert result["code"] == 486
    assert result["sipDetails"]["code"] == 486
    assert "CallConnected" not in " ".join(stack.app.callback_types(call_id))
    assert callee.wait() == 0, callee.errors()


def test_a_trunk_answering_503_fails_over_to_the_next(stack: VoiceStack, carrier: Carrier) -> None:
    busy = (SCENARIOS / "callee_busy.xml").read_text().replace("486 Busy Here", "503 Service Unavailable")
    unwell = carrier.tmp_path / "callee_503.xml"
    unwell.write_text(busy)
    first = carrier.callee(unwell)
    second = carrier.callee(SCENARIOS / "callee.xml")
    carrier.route()
    call_id = create_call(stack, carrier.prefix + "004").call_connection_id
    callback(stack, call_id, "CallConnected")
    assert first.wait() == 0, first.errors()
    assert stack.app.client is not None
    stack.app.client.get_call_connection(call_id).hang_up(is_for_everyone=True)
    callback(stack, call_id, "CallDisconnected")
    assert second.wait() == 0, second.errors()
    assert "CreateCallFailed" not in " ".join(stack.app.callback_types(call_id))


def test_a_number_with_no_route_fails_at_once(stack: VoiceStack) -> None:
    call_id = create_call(stack, "+19995550100").call_connection_id
    failed = callback(stack, call_id, "CreateCallFailed")
    assert failed.data["resultInformation"]["code"] == 404


def test_create_call_refuses_a_caller_id_the_resource_cannot_call_from(stack: VoiceStack) -> None:
    body: dict[str, Any] = {
        "targets": [{"kind": "phoneNumber", "phoneNumber": {"value": "+15550001111"}}],
        "callbackUri": stack.app.callback_url,
    }
    with stack.http() as client:
        url = f"/calling/callConnections?api-version={CALLING}"
        for caller, status in ((None, 400), (NUMBER, 201), ("+14255550100", 403), (UNHEARD_NUMBER, 403)):
            sent = dict(body, sourceCallerIdNumber={"value": caller}) if caller else body
            response = client.post(url, json=sent)
            if status == 201:  # NUMBER has inbound+outbound calling (the call fails: no route)
                assert response.status_code == 201, response.text
                continue
            assert response.status_code == status, (caller, response.text)
            assert response.json()["error"]["code"] in ("BadRequest", "Forbidden")
        no_callback = client.post(url, json={k: v for k, v in body.items() if k != "callbackUri"})
        assert no_callback.status_code == 400, no_callback.text


def test_the_far_end_hanging_up_ends_the_call(stack: VoiceStack, carrier: Carrier) -> None:
    callee = carrier.callee(HERE / "callee_hangs_up.xml")
    carrier.route()
    call_id = create_call(stack, carrier.prefix + "005").call_connection_id
    callback(stack, call_id, "CallConnected")
    disconnected = callback(stack, call_id, "CallDisconnected")
    assert disconnected.data["resultInformation"]["code"] == 200
    assert callee.wait() == 0, callee.errors()
    with stack.http() as client:
        ended = client.get(f"/calling/callConnections/{call_id}?api-version={CALLING}")
        assert ended.status_code == 200
        assert ended.json()["callConnectionState"] == "disconnected"
        assert client.get(
            f"/calling/callConnections/{call_id}/participants?api-version={CALLING}"
        ).json() == {"value": []}


def test_a_worker_killed_mid_call_ends_it_with_call_disconnected(stack: VoiceStack, carrier: Carrier) -> None:
    carrier.callee(SCENARIOS / "callee.xml")
    carrier.route()
    call_id = create_call(stack, carrier.prefix + "006").call_connection_id
    callback(stack, call_id, "CallConnected")
    status_file = stack.tmp / "data" / "sip-status.json"

    def holding_workers() -> list[dict[str, Any]]:
        status = json.loads(status_file.read_text())
        return [w for w in status["workers"] if w["calls"] > 0 and w["pid"]]

    holding = wait(holding_workers, 5, what="the worker holding the call in the status file")
    os.kill(holding[0]["pid"], signal.SIGKILL)
    disconnected = callback(stack, call_id, "CallDisconnected")
    result = disconnected.data["resultInformation"]
    assert result["code"] == 500
    assert result["subCode"] == 5100
    assert "worker" in result["message"]

    def replaced() -> bool:
        now = json.loads(status_file.read_text())
        return all(w["up"] and w["pid"] != holding[0]["pid"] for w in now["workers"])

    wait(replaced, 30, what="the dead worker's replacement")


def test_no_subscription_for_the_number_answers_480_at_once(stack: VoiceStack, tmp_path: Path) -> None:
    started = time.monotonic()
    sipp = Sipp(
        tmp_path, refused_scenario(tmp_path, 480), "-s", UNHEARD_NUMBER, target=f"{HOST}:{stack.sip_port}"
    )
    try:
        assert sipp.wait(20) == 0, sipp.errors()
        assert time.monotonic() - started < 3.0  # not the 4 s ring timeout
    finally:
        sipp.kill()
