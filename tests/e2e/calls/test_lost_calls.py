"""Calls nobody else would end, end to end: the ``trunkline sip`` process itself SIGKILLed
mid-call (its heartbeat stops; the events worker's sweeper ends the call), an outbound call
created while no SIP process runs (CreateCallFailed after the place bound), and a hang-up
before any SIP process took the INVITE (the call ends at once; the process that takes the
INVITE later does not place it). Real api/worker/sip processes, SIPp as the carrier."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
from sqlalchemy import select

from gateway.calls.models import Call, CallLeg
from tests.e2e.calls.conftest import VoiceStack, wait
from tests.e2e.calls.test_outbound_calls import CALLING, Carrier, callback, carrier, create_call
from tests.sip.support import SCENARIOS

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

__all__ = ["carrier"]  # the fixture, shared with the outbound tests


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _sip_status(stack: VoiceStack) -> dict[str, Any]:
    return dict(json.loads((stack.tmp / "data" / "sip-status.json").read_text()))


def test_a_sip_process_killed_mid_call_and_calls_while_none_runs(stack: VoiceStack, carrier: Carrier) -> None:
    callee = carrier.callee(SCENARIOS / "callee.xml")
    carrier.route()
    live = create_call(stack, carrier.prefix + "101", "live").call_connection_id
    callback(stack, live, "CallConnected")

    sip = stack.processes["sip"]
    worker_pids = [w["pid"] for w in _sip_status(stack)["workers"] if w["pid"]]
    killed_at = time.monotonic()
    os.kill(sip.pid, signal.SIGKILL)
    sip.wait(10)

    # (c) its heartbeat stops: the sweeper ends the call after the 5 s bound, saying why
    disconnected = callback(stack, live, "CallDisconnected", timeout=30)
    result = disconnected.data["resultInformation"]
    assert (result["code"], result["subCode"]) == (500, 5101)
    assert "SIP process" in result["message"]
    assert "lost" in result["message"]
    # not before the bound: 5 s from the last heartbeat, which is at most a second old at the kill
    assert time.monotonic() - killed_at >= 3.5
    assert disconnected.data["operationContext"] == "live"
    # the orphaned pjsua worker saw its supervisor go and hung up toward the carrier
    assert callee.wait() == 0, callee.errors()
    wait(lambda: all(_gone(pid) for pid in worker_pids), 15, what="the dead process's workers to exit")

    # (a) no SIP process runs: the call's INVITE waits in the queue, then the call fails
    started = time.monotonic()
    unplaced = create_call(stack, carrier.prefix + "102", "unplaced").call_connection_id
    failed = callback(stack, unplaced, "CreateCallFailed", timeout=30)
    result = failed.data["resultInformation"]
    assert (result["code"], result["subCode"]) == (503, 5300)
    assert result["message"] == "No SIP process took the call within 3 s."
    assert time.monotonic() - started >= 2.5

    # (b) a hang-up before any SIP process took the INVITE ends the call at once
    early = create_call(stack, carrier.prefix + "103", "early")
    assert stack.app.client is not None
    stack.app.client.get_call_connection(early.call_connection_id).hang_up(is_for_everyone=False)
    hung_up = callback(stack, early.call_connection_id, "CreateCallFailed", timeout=5)
    assert hung_up.data["resultInformation"]["code"] == 487
    with stack.http() as client:
        state = client.get(f"/calling/callConnections/{early.call_connection_id}?api-version={CALLING}")
        assert state.json()["callConnectionState"] == "disconnected"

    # a SIP process starts again: it takes both queued INVITEs and places neither
    with stack.database.read_session() as session:
        legs = {
            call_id: session.scalar(select(CallLeg.id).where(CallLeg.call_id == call_id))
            for call_id in (unplaced, early.call_connection_id)
        }
    stack.start("sip", *[str(arg) for arg in sip.args[3:]])
    wait(
        lambda: all(w["up"] and w["pid"] not in worker_pids for w in _sip_status(stack)["workers"]),
        30,
        what="the new SIP process's workers",
    )
    for leg_id in legs.values():
        wait(lambda leg_id=leg_id: f"INVITE {leg_id} not placed" in stack.log("sip"), 10, what="the drop")
    with stack.database.read_session() as session:
        for call_id in legs:
            call = session.get(Call, call_id)
            assert call is not None
            assert (call.state, call.sip_process) == ("ended", "")
    # and the new process calls as before
    second = carrier.callee(SCENARIOS / "callee.xml")
    carrier.trunks.reverse()  # the new callee first
    stack.cli("sip", "route", "remove", "--prefix", carrier.prefix)
    carrier.route()
    again = create_call(stack, carrier.prefix + "104", "again").call_connection_id
    callback(stack, again, "CallConnected")
    stack.app.client.get_call_connection(again).hang_up(is_for_everyone=True)
    callback(stack, again, "CallDisconnected")
    assert second.wait() == 0, second.errors()
