"""Inbound (MO) messages through the SMPP worker: reassembly, keywords and the automatic reply,
parts kept across a restart, data_sm."""

from __future__ import annotations

from sqlalchemy import select

from gateway.sms.models import (
    SmsInbound,
    SmsInboundPart,
    SmsOptOut,
)
from sms.udh import build_concat_udh
from tests.sms.worker.harness import SENDER, TO, Harness, submits
from tests.support.smsc import SmscProcess
from tests.support.waiting import wait_until


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


def test_data_sm_mo_is_delivered_too(harness: Harness, smsc: SmscProcess) -> None:
    harness.connect("op1", smsc)
    harness.start()
    answer = smsc.data_sm(TO[1:], SENDER[1:], "Grüße via data_sm".encode("utf-16-be"), data_coding=8)
    assert answer.get("command_status") == 0
    [event] = wait_until(lambda: harness.events("Microsoft.Communication.SMSReceived"), what="SMSReceived")
    assert event.data["message"] == "Grüße via data_sm"
