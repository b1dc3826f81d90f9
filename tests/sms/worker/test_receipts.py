"""Delivery receipts through the SMPP worker: before the resp, failed, in another id notation, and
the report event they finish a message with."""

from __future__ import annotations

from sqlalchemy import select

from gateway.sms.models import (
    SmsPendingReceipt,
    SmsSegment,
)
from tests.sms.worker.harness import TO, Harness
from tests.support.smsc import SmscProcess
from tests.support.waiting import wait_until


def test_receipt_before_resp_is_kept_and_matched(harness: Harness, smsc: SmscProcess) -> None:
    smsc.configure(receipts="before_resp", submit_latency_ms=100)
    harness.connect("op1", smsc)
    harness.start()
    message_id = harness.send("early bird")
    wait_until(lambda: harness.state(message_id) == "delivered", what="delivered")
    with harness.database.session() as session:
        assert list(session.scalars(select(SmsPendingReceipt))) == []


def test_failed_receipt_fails_the_message(harness: Harness, smsc: SmscProcess) -> None:
    smsc.configure(receipts="immediate", receipt_stat="UNDELIV", receipt_err="034")
    harness.connect("op1", smsc)
    harness.start()
    message_id = harness.send("nope")
    wait_until(lambda: harness.state(message_id) == "failed", what="failed")
    message = harness.message(message_id)
    assert message.delivery_status == "Failed"
    assert "UNDELIV" in (message.delivery_status_details or "")
    assert "034" in (message.delivery_status_details or "")


def test_receipt_ids_in_another_notation_match(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc, resp_id_format="hex", receipt_id_format="decimal")
    harness.start()
    message_id = harness.send("notation")
    wait_until(lambda: harness.state(message_id) == "submitted", what="submitted")
    with harness.database.session() as session:
        [segment] = session.scalars(select(SmsSegment).where(SmsSegment.message_id == message_id))
        stored = segment.smsc_message_id
    assert stored is not None
    assert stored.isdecimal()  # the SMSC's hex id ("0000000c") as a number ("12")
    assert not stored.startswith("0")
    smsc.receipt(stored, stat="DELIVRD")  # quoted in decimal, as such SMSCs do
    wait_until(lambda: harness.state(message_id) == "delivered", what="delivered")


def test_report_event_envelope_is_acs_shaped(harness: Harness, smsc: SmscProcess) -> None:
    smsc.configure(receipts="immediate")
    harness.connect("op1", smsc)
    harness.start()
    message_id = harness.send("envelope")
    wait_until(lambda: harness.state(message_id) == "delivered", what="delivered")
    [event] = harness.events("Microsoft.Communication.SMSDeliveryReportReceived")
    assert event.id == message_id
    assert event.subject == "/phonenumber/" + TO[1:]
    message = harness.message(message_id)
    assert message.submitted_at is not None
    attempt = event.data["deliveryAttempts"][0]["timestamp"]
    assert attempt.startswith(message.submitted_at.strftime("%Y-%m-%dT%H:%M:%S"))
