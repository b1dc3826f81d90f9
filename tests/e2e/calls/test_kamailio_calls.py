"""Calls through the production edge: ``trunkline sip --edge kamailio --workers 3``, SIPp as the
carrier in front of Kamailio, real ``trunkline api``/``worker`` processes, and an app on the
official ``CallAutomationClient``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure.communication.callautomation import PhoneNumberIdentifier

from gateway.calls.models import CallLeg
from tests.e2e.calls.conftest import CALLER, KAMAILIO_WORKERS, NUMBER, VoiceStack, wait
from tests.e2e.calls.test_outbound_calls import Carrier
from tests.sip.support import HOST, SCENARIOS, Sipp

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

PREFIX = "Microsoft.Communication."
CALLS = 6  # two per worker when the dispatcher spreads them by load


def events_of(stack: VoiceStack, kind: str) -> list[Any]:
    with stack.app.lock:
        return [e for e in stack.app.callbacks if e.type == PREFIX + kind]


def test_inbound_calls_spread_over_the_workers_answered_by_the_sdk_with_rtp_both_ways_then_far_end_bye(
    kamailio_stack: VoiceStack, tmp_path: Path
) -> None:
    stack = kamailio_stack
    app = stack.app
    answered: list[str] = []

    def answer(event: dict[str, Any]) -> None:
        assert app.client is not None
        properties = app.client.answer_call(event["incomingCallContext"], app.callback_url)
        answered.append(properties.call_connection_id)

    app.on_incoming = answer
    packets = stack.rtp_packets()
    sipp = Sipp(
        tmp_path, SCENARIOS / "carrier_call_pcap.xml", "-s", NUMBER, "-d", "4000", "-l", str(CALLS),
        "-r", "20", target=f"{HOST}:{stack.sip_port}", calls=CALLS,
    )  # fmt: skip
    try:
        wait(lambda: len(answered) == CALLS, 30, what=f"{CALLS} calls answered by the SDK")
        wait(lambda: len(events_of(stack, "CallConnected")) == CALLS, 20, what="CallConnected for each")
        assert {e.data["callConnectionId"] for e in events_of(stack, "CallConnected")} == set(answered)

        with stack.database.session() as session:
            legs = session.query(CallLeg).filter(CallLeg.call_id.in_(answered)).all()
            workers = sorted(leg.worker for leg in legs if leg.worker is not None)
        assert len(legs) == CALLS
        # Kamailio's dispatcher (call load) spread them over every worker
        assert set(workers) == set(range(KAMAILIO_WORKERS)), workers

        def rtp_both_ways() -> bool:
            now = stack.rtp_packets()
            return all(now.get(d, 0) - packets.get(d, 0) >= 50 * CALLS for d in ("received", "sent"))

        wait(rtp_both_ways, 10, what="RTP both ways at the workers")

        def all_disconnected() -> bool:
            ended = {e.data["callConnectionId"]: e for e in events_of(stack, "CallDisconnected")}
            return set(answered) <= set(ended)

        wait(all_disconnected, 20, what="CallDisconnected after each carrier BYE")
        for event in events_of(stack, "CallDisconnected"):
            assert event.data["resultInformation"]["code"] == 200
        assert sipp.wait() == 0, sipp.errors()
        assert not app.errors, app.errors
    finally:
        sipp.kill()


def test_create_call_goes_out_through_kamailio_and_the_app_hangs_up(
    kamailio_stack: VoiceStack, tmp_path: Path
) -> None:
    stack = kamailio_stack
    carrier = Carrier(stack, tmp_path, "+15558880")
    try:
        callee = carrier.callee(SCENARIOS / "callee.xml")
        carrier.route()
        assert stack.app.client is not None
        properties = stack.app.client.create_call(
            PhoneNumberIdentifier("+155588800001"),
            stack.app.callback_url,
            source_caller_id_number=PhoneNumberIdentifier(CALLER),
            operation_context="out-kamailio",
        )
        call_id = properties.call_connection_id

        def connected() -> list[Any]:
            return [e for e in events_of(stack, "CallConnected") if e.data["callConnectionId"] == call_id]

        event = wait(connected, 20, what="CallConnected")[0]
        assert event.data["operationContext"] == "out-kamailio"
        stack.app.client.get_call_connection(call_id).hang_up(is_for_everyone=True)
        wait(
            lambda: any(e.data["callConnectionId"] == call_id for e in events_of(stack, "CallDisconnected")),
            20,
            what="CallDisconnected",
        )
        assert callee.wait() == 0, callee.errors()
        # the callee got the INVITE from Kamailio (its Via on top), not from a worker directly
        messages = "".join(p.read_text(errors="replace") for p in callee.log_dir.glob("*_messages.log"))
        invite = messages[messages.index("INVITE sip:") :]
        top_via = next(line for line in invite.splitlines() if line.lower().startswith("via:"))
        assert f"127.0.0.1:{stack.sip_port}" in top_via, top_via
        assert not stack.app.errors, stack.app.errors
    finally:
        carrier.close()
