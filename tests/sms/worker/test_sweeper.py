"""The SMPP worker's sweeper: report timeouts, receipts stranded as pending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from gateway.sms.models import (
    SmsMessage,
    SmsPendingReceipt,
    SmsSegment,
)
from sms.worker.inbound import InboundRecorder
from sms.worker.sweeper import Sweeper
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
    Sweeper(harness.database, harness.settings, InboundRecorder(harness.settings)).sweep()
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


def test_a_message_not_submitted_within_its_window_expires(harness: Harness) -> None:
    # no connection at all: nothing claims it; the sweep expires it once its own window is over
    old = harness.send("nowhere to go", timeout=60)
    recent = harness.send("not yet", timeout=60)
    claimed = harness.send("claimed", timeout=60)
    now = datetime.now(UTC)
    long_ago = now - timedelta(seconds=harness.settings.sms_delivery_report_timeout_seconds + 1)
    with harness.database.session() as session:
        for message_id in (old, claimed):
            message = session.get(SmsMessage, message_id)
            assert message is not None
            message.created_at = long_ago
        message = session.get(SmsMessage, claimed)
        assert message is not None
        message.claimed_until = now + timedelta(minutes=1)  # a live claim is its process's to finish
    Sweeper(harness.database, harness.settings, InboundRecorder(harness.settings)).sweep()
    assert (harness.state(old), harness.state(recent), harness.state(claimed)) == (
        "expired",
        "queued",
        "queued",
    )
    message = harness.message(old)
    assert message.delivery_status == "Failed"
    assert "could not be submitted" in (message.delivery_status_details or "")
    assert (message.segments_succeeded, message.segments_failed) == (0, 1)
    [event] = harness.events("Microsoft.Communication.SMSDeliveryReportReceived")
    assert event.id == old
    assert event.data["deliveryStatus"] == "Failed"
