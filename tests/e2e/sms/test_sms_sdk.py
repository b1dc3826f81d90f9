"""End to end with the official SmsClient over HTTPS against real processes and the node SMSC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from gateway.events import builder
from tests.gateway.events.harness import wait_until

from .conftest import SENDER, SmsStack


def recipients(count: int, start: int = 2000) -> list[str]:
    return [f"+1425555{start + i:04d}" for i in range(count)]


def reports_for(stack: SmsStack, message_ids: set[str]) -> dict[str, Any]:
    import json

    found: dict[str, Any] = {}
    with stack.receiver.lock:
        received = list(stack.receiver.received)
    for item in received:
        if item.event_type != builder.SMS_DELIVERY_REPORT_RECEIVED:
            continue
        for event in json.loads(item.body):
            if event["data"]["messageId"] in message_ids:
                found[event["data"]["messageId"]] = event
    return found


def test_one_recipient_gsm7_delivery_report_event_and_get(stack: SmsStack) -> None:
    client = stack.sms_client()
    [result] = client.send(
        from_=SENDER, to=["+14255550123"], message="Hello [GSM] ~ €", enable_delivery_report=True, tag="one"
    )
    assert result.successful, result.error_message
    assert result.http_status_code == 202
    [pdu] = wait_until(lambda: stack.smsc.pdus("submit_sm"), 10, what="submit_sm")
    assert pdu["data_coding"] == 0
    assert bytes.fromhex(pdu["short_message_hex"]) == b"Hello \x1b<GSM\x1b> \x1b= \x1be"
    events = wait_until(lambda: reports_for(stack, {result.message_id}), 30, what="report event")
    data = events[result.message_id]["data"]
    assert data["deliveryStatus"] == "Delivered"
    assert data["tag"] == "one"
    assert data["from"] == SENDER
    assert stack.receiver.errors == []
    with stack.http() as http:
        report = http.get(f"/deliveryReports/{result.message_id}", params={"api-version": "2026-01-23"})
    assert report.status_code == 200
    assert report.json()["deliveryStatus"] == "Delivered"
    assert report.json()["deliveryAttempts"] == data["deliveryAttempts"]


def test_hundred_recipients_ucs2_multi_segment(stack: SmsStack) -> None:
    client = stack.sms_client()
    numbers = recipients(100)
    text = "Ünïcödé ✓ " * 10  # ✓ is not GSM-7: UCS-2, 100 characters, 2 parts
    results = client.send(from_=SENDER, to=numbers, message=text, enable_delivery_report=True)
    assert [r.to for r in results] == numbers
    assert all(r.successful for r in results)
    ids = {r.message_id for r in results}
    assert len(ids) == 100
    wait_until(lambda: len(reports_for(stack, ids)) == 100, 60, what="100 report events")
    pdus = stack.smsc.pdus("submit_sm")
    assert len(pdus) == 200
    by_destination: dict[str, list[dict[str, Any]]] = {}
    for pdu in pdus:
        by_destination.setdefault(pdu["destination_addr"], []).append(pdu)
    for number in numbers:
        parts = sorted(by_destination[number[1:]], key=lambda p: bytes.fromhex(p["udh_hex"])[-1])
        assert [p["data_coding"] for p in parts] == [8, 8]
        udhs = [bytes.fromhex(p["udh_hex"]) for p in parts]
        assert [u[:3] for u in udhs] == [bytes([5, 0, 3])] * 2
        assert udhs[0][3] == udhs[1][3]  # one reference
        assert [u[4:] for u in udhs] == [bytes([2, 1]), bytes([2, 2])]
        assert "".join(bytes.fromhex(p["payload_hex"]).decode("utf-16-be") for p in parts) == text


def test_repeatability_sends_once(stack: SmsStack) -> None:
    body = {
        "from": SENDER,
        "smsRecipients": [
            {
                "to": "+14255550124",
                "repeatabilityRequestId": str(uuid.uuid4()),
                "repeatabilityFirstSent": format_datetime(datetime.now(UTC), usegmt=True),
            }
        ],
        "message": "exactly once",
    }
    with stack.http() as http:
        first = http.post("/sms", params={"api-version": "2021-03-07"}, json=body).json()["value"][0]
        again = http.post("/sms", params={"api-version": "2021-03-07"}, json=body).json()["value"][0]
    assert first["messageId"] == again["messageId"]
    assert again["repeatabilityResult"] == "accepted"
    wait_until(lambda: stack.smsc.pdus("submit_sm"), 10, what="submit")
    stack.wait_all_final()
    assert len(stack.smsc.pdus("submit_sm")) == 1


def test_mo_event_and_stop_opt_out_round_trip(stack: SmsStack) -> None:
    handset = "+14255550177"
    stack.smsc.mo(handset[1:], SENDER[1:], b"Hi there")
    stack.smsc.mo(handset[1:], SENDER[1:], b"STOP")

    def received() -> list[Any]:
        import json

        with stack.receiver.lock:
            items = list(stack.receiver.received)
        return [
            e["data"]
            for i in items
            if i.event_type == builder.SMS_RECEIVED
            for e in json.loads(i.body)
            if e["data"]["from"] == handset
        ]

    messages = wait_until(lambda: len(received()) == 2 and received(), 30, what="2 SMSReceived")
    assert sorted(m["message"] for m in messages) == ["Hi there", "STOP"]
    assert all(m["to"] == SENDER for m in messages)
    with stack.http() as http:
        checked = http.post(
            "/sms/optouts:check",
            params={"api-version": "2026-01-23"},
            json={"from": SENDER, "recipients": [{"to": handset}]},
        ).json()["value"]
    assert checked == [{"to": handset, "httpStatusCode": 200, "isOptedOut": True}]
    [result] = stack.sms_client().send(from_=SENDER, to=[handset], message="promo")
    assert not result.successful
    assert "opted out" in (result.error_message or "")
    with stack.http() as http:
        removed = http.post(
            "/sms/optouts:remove",
            params={"api-version": "2026-01-23"},
            json={"from": SENDER, "recipients": [{"to": handset}]},
        )
    assert removed.status_code == 200
    [result] = stack.sms_client().send(from_=SENDER, to=[handset], message="welcome back")
    assert result.successful


def test_sender_not_owned_is_an_error(stack: SmsStack) -> None:
    with pytest.raises(HttpResponseError) as caught:
        stack.sms_client().send(from_="+14255550111", to=["+14255550123"], message="spoof")
    assert caught.value.status_code == 400


def test_destination_country_quota(stack: SmsStack) -> None:
    numbers = ["+33612345671", "+33612345672", "+33612345673"]
    results = stack.sms_client().send(from_=SENDER, to=numbers, message="bonjour")
    assert [r.http_status_code for r in results] == [202, 202, 429]
    assert not results[2].successful
    assert "FR" in (results[2].error_message or "")
    stack.wait_all_final()
