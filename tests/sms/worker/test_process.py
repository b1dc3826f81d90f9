"""The SMPP worker process end to end against the real node-smpp SMSC: claims, submits, segments,
failover, retries, routing, several processes sharing the queue."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from gateway.sms import send as sms_send
from gateway.sms.models import (
    SmsSegment,
)
from gateway.sms.schemas import SendMessageRequest
from sms.udh import build_concat_udh
from tests.sms.worker.harness import SENDER, TO, Harness, submits
from tests.support.smsc import ESME_RINVDSTADR, SmscProcess
from tests.support.waiting import wait_until


def test_gsm7_message_is_submitted_and_delivered(harness: Harness, smsc: SmscProcess) -> None:
    smsc.configure(receipts="immediate")
    harness.connect("op1", smsc)
    harness.start()
    message_id = harness.send("Hello {world} €")
    wait_until(lambda: harness.state(message_id) == "delivered", what="delivered")
    [pdu] = submits(smsc)
    assert pdu["data_coding"] == 0
    assert pdu["destination_addr"] == TO[1:]
    assert pdu["source_addr"] == SENDER[1:]
    assert pdu["registered_delivery"] == 1
    # GSM 03.38 septets, unpacked: "{" and "}" and "€" are escape pairs 1B28, 1B29, 1B65
    assert bytes.fromhex(pdu["short_message_hex"]) == b"Hello \x1b(world\x1b) \x1be"
    message = harness.message(message_id)
    assert (message.delivery_status, message.segments_succeeded) == ("Delivered", 1)
    [event] = harness.events("Microsoft.Communication.SMSDeliveryReportReceived")
    assert event.data["messageId"] == message_id
    assert event.data["deliveryStatus"] == "Delivered"
    assert event.data["tag"] == "t"
    assert event.data["deliveryAttempts"][0]["segmentsSucceeded"] == 1


def test_a_validity_period_goes_to_the_smsc_as_a_relative_time(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc)
    harness.start()
    sent_at = datetime.now(UTC)
    harness.send("expires", validity=2 * 3600 + 30)
    harness.send("default")
    wait_until(lambda: len(submits(smsc)) == 2, what="two submits")
    with_period, without = sorted(
        submits(smsc), key=lambda pdu: bool(pdu.get("validity_period")), reverse=True
    )
    # node-smpp reads 000000023000000R ... as the SMSC's now plus the period (a Date, here as ISO)
    expires = datetime.fromisoformat(with_period["validity_period"].replace("Z", "+00:00"))
    assert abs((expires - sent_at).total_seconds() - (2 * 3600 + 30)) < 30
    assert not without.get("validity_period")  # none asked: the SMSC's default


def test_ucs2_multi_segment_uses_udh_and_aggregates(harness: Harness, smsc: SmscProcess) -> None:
    smsc.configure(receipts="delayed", receipt_delay_ms=50)
    harness.connect("op1", smsc)
    harness.start()
    text = "Привет мир! " * 12  # 144 UCS-2 characters: 3 parts of at most 67
    message_id = harness.send(text)
    wait_until(lambda: harness.state(message_id) == "delivered", what="delivered")
    pdus = submits(smsc)
    assert len(pdus) == 3
    reference = harness.message(message_id).concat_reference
    rebuilt = ""
    for index, pdu in enumerate(pdus, start=1):
        assert pdu["data_coding"] == 8
        assert pdu["esm_class"] & 0x40
        assert bytes.fromhex(pdu["udh_hex"]) == build_concat_udh(reference, 3, index)
        rebuilt += bytes.fromhex(pdu["payload_hex"]).decode("utf-16-be")
    assert rebuilt == text
    with harness.database.session() as session:
        segments = list(session.scalars(select(SmsSegment).where(SmsSegment.message_id == message_id)))
    ids = [s.smsc_message_id for s in segments]
    assert len(ids) == 3
    assert all(ids)
    assert len(set(ids)) == 3
    assert harness.message(message_id).segments_succeeded == 3


def test_permanent_error_names_the_smpp_status_after_failover(harness: Harness, smsc: SmscProcess) -> None:
    smsc.fault(ESME_RINVDSTADR, count=1)
    harness.connect("op1", smsc)
    harness.connect("op2", smsc)
    harness.start()
    message_id = harness.send("fail over")
    wait_until(lambda: harness.state(message_id) == "submitted", what="submitted on op2")
    assert len(submits(smsc)) == 2
    smsc.fault(ESME_RINVDSTADR, count=10)
    message_id = harness.send("fail twice")
    wait_until(lambda: harness.state(message_id) == "failed", what="failed")
    message = harness.message(message_id)
    assert "ESME_RINVDSTADR" in (message.error or "")
    [event] = [
        e
        for e in harness.events("Microsoft.Communication.SMSDeliveryReportReceived")
        if e.data["messageId"] == message_id
    ]
    assert "ESME_RINVDSTADR" in event.data["deliveryStatusDetails"]


def test_throttling_is_retried(harness: Harness, smsc: SmscProcess) -> None:
    smsc.fault(0x58, count=3)
    harness.connect("op1", smsc)
    harness.start()
    message_id = harness.send("throttled")
    wait_until(lambda: harness.state(message_id) == "submitted", what="submitted")
    assert len(submits(smsc)) == 4
    assert harness.message(message_id).possible_duplicates == 0


def test_no_route_fails_at_once(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc, prefix="+44")
    harness.start()
    message_id = harness.send("where to?")
    wait_until(lambda: harness.state(message_id) == "failed", what="failed")
    assert "No SMPP route" in (harness.message(message_id).error or "")


def test_ucs2_only_connection_recodes(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc, default_data_coding="ucs2")
    harness.start()
    message_id = harness.send("plain " * 20)  # 120 GSM-7 characters: 1 part, 2 in UCS-2
    wait_until(lambda: harness.state(message_id) == "submitted", what="submitted")
    pdus = submits(smsc)
    assert [p["data_coding"] for p in pdus] == [8, 8]
    message = harness.message(message_id)
    assert (message.segment_count, message.data_coding) == (2, 8)


def test_gsm7_escape_pair_is_never_split(harness: Harness, smsc: SmscProcess) -> None:
    smsc.configure(receipts="immediate")
    harness.connect("op1", smsc)
    harness.start()
    text = "a" * 152 + "€" + "b" * 10  # the escape pair of € would straddle septets 153/154
    message_id = harness.send(text)
    wait_until(lambda: harness.state(message_id) == "delivered", what="delivered")
    parts = [bytes.fromhex(p["payload_hex"]) for p in submits(smsc)]
    assert parts == [b"a" * 152, b"\x1be" + b"b" * 10]
    assert all(p["data_coding"] == 0 for p in submits(smsc))


def test_transmitter_and_receiver_binds(harness: Harness, smsc: SmscProcess) -> None:
    smsc.configure(receipts="immediate")
    harness.connect("op1", smsc, bind_mode="transmitter+receiver")
    harness.start()
    message_id = harness.send("two binds")
    wait_until(lambda: harness.state(message_id) == "delivered", what="delivered over the receiver bind")
    assert sorted(s["bound"] for s in smsc.bound_sessions()) == ["receiver", "transmitter"]


def test_two_processes_share_the_queue_without_sending_twice(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc)
    second = Harness(harness.database, harness.settings, harness.resource_id)
    harness.start()
    second.start()
    try:
        # Both binds up before anything is queued, and resps slow enough (300 submits take over
        # a second per bind) that a busy machine cannot let one process drain the queue alone.
        wait_until(lambda: len(smsc.bound_sessions()) >= 2, 20, what="both processes bound")
        smsc.configure(submit_latency_ms=50)
        request = SendMessageRequest.model_validate(
            {
                "from": SENDER,
                "smsRecipients": [{"to": f"+1425555{3000 + i:04d}"} for i in range(100)],
                "message": "shared",
            }
        )
        ids: list[str] = []
        for _ in range(3):
            with harness.database.session() as session:
                ids += sms_send.send(
                    session, harness.settings, harness.resource_id, request, datetime.now(UTC)
                ).queued
        wait_until(lambda: all(harness.state(i) == "submitted" for i in ids), 30, what="all submitted")
        assert len(submits(smsc)) == 300
        assert sum(harness.message(i).attempts for i in ids) == 300  # each claimed once
        assert len({s["session"] for s in submits(smsc)}) == 2  # both processes did some of it
    finally:
        second.stop()
