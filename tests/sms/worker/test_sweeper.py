"""The SMPP worker's sweeper: report timeouts, receipts stranded as pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from gateway.sms.models import (
    SmsMessage,
    SmsPendingReceipt,
    SmsSegment,
)
from sms.worker.process import SmppProcess
from tests.sms.worker.harness import Harness
from tests.support.smsc import SmscProcess
from tests.support.waiting import wait_until


def test_report_timeout_expires_with_a_failed_report(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc)  # receipts: none
    harness.start()
    message_id = harness.send("no receipt", timeout=60)
    wait_until(lambda: harness.state(message_id) == "submitted", what="submitted")
    with harness.database.session() as session:
        message = session.get(SmsMessage, message_id)
        assert message is not None
        message.dlr_deadline = datetime.now(UTC) - timedelta(seconds=1)
    wait_until(lambda: harness.state(message_id) == "expired", what="expired")
    message = harness.message(message_id)
    assert message.delivery_status == "Failed"
    assert "deliveryReportTimeoutInSeconds" in (message.delivery_status_details or "")


def test_a_receipt_stranded_as_pending_is_applied_by_the_sweep(harness: Harness) -> None:
    # Two SMPP processes: one kept the receipt as pending while the other was committing the resp.
    message_id = harness.send("stranded")
    now = datetime.now(UTC)
    with harness.database.session() as session:
        message = session.get(SmsMessage, message_id)
        assert message is not None
        message.state = "submitted"
        message.submitted_at = now - timedelta(minutes=2)
        message.dlr_deadline = now + timedelta(hours=1)
        session.add(
            SmsSegment(
                message_id=message_id,
                sequence=1,
                connection_id="conn-a",
                smsc_message_id="4711",
                submit_state="accepted",
            )
        )
        session.add(
            SmsPendingReceipt(
                connection_id="conn-a",
                smsc_message_id="4711",
                state=2,  # DELIVERED
                error="000",
                received_at=now - timedelta(minutes=1),
            )
        )
        # too young to be stranded: the writer may still be applying it with its resp
        session.add(
            SmsPendingReceipt(connection_id="conn-a", smsc_message_id="4711", state=2, received_at=now)
        )
    SmppProcess(harness.settings, harness.database).sweep()
    message = harness.message(message_id)
    assert (message.state, message.delivery_status, message.segments_succeeded) == (
        "delivered",
        "Delivered",
        1,
    )
    [event] = harness.events("Microsoft.Communication.SMSDeliveryReportReceived")
    assert event.data["messageId"] == message_id
    with harness.database.session() as session:
        [left] = session.scalars(select(SmsPendingReceipt))
        assert left.received_at > now - timedelta(seconds=1)
