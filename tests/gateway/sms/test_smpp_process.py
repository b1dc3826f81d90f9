"""The SMPP process against the real node-smpp SMSC: submit, segments, receipts, MO, failover."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.core.celery_app import create_celery
from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.events.models import OutboxEvent
from gateway.resources.service import create_resource
from gateway.sms import connections
from gateway.sms import send as sms_send
from gateway.sms.jobs import SendJobPublisher
from gateway.sms.models import (
    SmsInbound,
    SmsInboundPart,
    SmsMessage,
    SmsOptOut,
    SmsPendingReceipt,
    SmsSegment,
)
from gateway.sms.schemas import ConnectionCreate, RouteCreate, SendMessageRequest
from gateway.sms.smpp_process import SmppProcess
from sms.udh import build_concat_udh
from tests.support.smsc import ESME_RINVDSTADR, SmscProcess
from tests.support.waiting import wait_until

from .support import give_number

SENDER = "+14255550100"
TO = "+14255550123"


class Harness:
    def __init__(self, database: Database, settings: Settings, resource_id: str) -> None:
        self.database = database
        self.settings = settings
        self.resource_id = resource_id
        self.process: SmppProcess | None = None
        self.thread: threading.Thread | None = None
        # POST /sms's hook: jobs published after the commit (here on the filesystem broker)
        self.jobs = SendJobPublisher(lambda: create_celery(settings), queue=settings.sms_job_queue)

    def connect(self, name: str, smsc: SmscProcess, prefix: str = "+", **extra: Any) -> None:
        with self.database.session() as session:
            connections.add_connection(
                session,
                ConnectionCreate(
                    name=name,
                    host=smsc.host,
                    port=smsc.port,
                    system_id=smsc.system_id,
                    password=smsc.password,
                    reconnect_backoff_initial=0.05,
                    reconnect_backoff_max=0.5,
                    **extra,
                ),
            )
            connections.add_route(session, RouteCreate(prefix=prefix, connection=name))

    def start(self) -> SmppProcess:
        self.process = SmppProcess(self.settings, self.database)
        self.thread = threading.Thread(target=self.process.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.process is not None and self.process._bound(), what="a bind")
        return self.process

    def stop(self) -> None:
        self.jobs.close()
        if self.process is not None and self.thread is not None:
            self.process.stop()
            self.thread.join(timeout=15)
            assert not self.thread.is_alive()

    def send(
        self,
        text: str,
        to: str = TO,
        *,
        report: bool = True,
        timeout: int | None = None,
        validity: int | None = None,
    ) -> str:
        options: dict[str, Any] = {"enableDeliveryReport": report, "tag": "t"}
        if timeout is not None:
            options["deliveryReportTimeoutInSeconds"] = timeout
        if validity is not None:
            options["validityPeriodSeconds"] = validity
        request = SendMessageRequest.model_validate(
            {"from": SENDER, "smsRecipients": [{"to": to}], "message": text, "smsSendOptions": options}
        )
        with self.database.session() as session:
            outcome = sms_send.send(session, self.settings, self.resource_id, request, datetime.now(UTC))
        self.jobs.publish(outcome.queued)
        return outcome.queued[0]

    def message(self, message_id: str) -> SmsMessage:
        with self.database.session() as session:
            message = session.get(SmsMessage, message_id)
            assert message is not None
            return message

    def state(self, message_id: str) -> str:
        return self.message(message_id).state

    def events(self, event_type: str) -> list[OutboxEvent]:
        with self.database.session() as session:
            return list(session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type)))


@pytest.fixture
def harness(database: Database, tmp_path: Path) -> Iterator[Harness]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database.url,
        sms_claim_lease_seconds=6,
        sms_retry_base_seconds=0.1,
        sms_retry_max_seconds=0.5,
        sms_optout_reply="You are unsubscribed.",
        # what has no job (auto-replies, the shared-queue test's rows) goes through the reconciler
        sms_job_grace_seconds=1,
        sms_reconcile_interval_seconds=0.2,
    )
    with database.session() as session:
        resource_id = create_resource(session, "sms-app", "https://gateway.test/").id
    give_number(database, resource_id, SENDER)
    h = Harness(database, settings, resource_id)
    yield h
    h.stop()


def submits(smsc: SmscProcess) -> list[dict[str, Any]]:
    return smsc.pdus("submit_sm")


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


def test_mo_becomes_an_event_and_stop_opts_out(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc)
    harness.start()
    udh1, udh2 = build_concat_udh(7, 2, 1), build_concat_udh(7, 2, 2)
    smsc.mo(TO[1:], SENDER[1:], udh1 + "Hello ".encode("utf-16-be"), data_coding=8, esm_class=0x40)
    smsc.mo(TO[1:], SENDER[1:], udh2 + "мир".encode("utf-16-be"), data_coding=8, esm_class=0x40)
    [event] = wait_until(lambda: harness.events("Microsoft.Communication.SMSReceived"), what="SMSReceived")
    assert event.data["message"] == "Hello мир"
    assert event.data["from"] == TO
    assert event.data["to"] == SENDER
    assert event.data["segmentCount"] == 2
    smsc.mo(TO[1:], SENDER[1:], b"Stop")
    wait_until(lambda: len(harness.events("Microsoft.Communication.SMSReceived")) == 2, what="STOP event")
    with harness.database.session() as session:
        assert session.get(SmsOptOut, (SENDER, TO)) is not None
    # the configured auto-reply goes out
    wait_until(lambda: submits(smsc), what="auto-reply")
    assert bytes.fromhex(submits(smsc)[0]["short_message_hex"]) == b"You are unsubscribed."
    # a number nobody owns: stored, not delivered
    smsc.mo(TO[1:], "14255550999", b"hello?")
    wait_until(lambda: _inbound_count(harness) == 3, what="stored")
    assert len(harness.events("Microsoft.Communication.SMSReceived")) == 2


def _inbound_count(harness: Harness) -> int:
    with harness.database.session() as session:
        return len(list(session.scalars(select(SmsInbound))))


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


def test_inbound_parts_survive_a_restart(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc)
    harness.start()
    udh1, udh2 = build_concat_udh(9, 2, 1), build_concat_udh(9, 2, 2)
    smsc.mo(TO[1:], SENDER[1:], udh1 + b"first half, ", esm_class=0x40)

    def parts() -> int:
        with harness.database.session() as session:
            return len(list(session.scalars(select(SmsInboundPart))))

    assert parts() == 1  # persisted before the deliver_sm_resp went out
    harness.stop()
    harness.start()  # a new process: the part comes back from the database
    smsc.mo(TO[1:], SENDER[1:], udh2 + b"second half", esm_class=0x40)
    [event] = wait_until(lambda: harness.events("Microsoft.Communication.SMSReceived"), what="SMSReceived")
    assert event.data["message"] == "first half, second half"
    assert parts() == 0


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


def test_data_sm_mo_is_delivered_too(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc)
    harness.start()
    answer = smsc.data_sm(TO[1:], SENDER[1:], "Grüße via data_sm".encode("utf-16-be"), data_coding=8)
    assert answer.get("command_status") == 0
    [event] = wait_until(lambda: harness.events("Microsoft.Communication.SMSReceived"), what="SMSReceived")
    assert event.data["message"] == "Grüße via data_sm"


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
