"""Inbound (MO) messages: reassembly, keywords (STOP, START, HELP), storage and the SMSReceived event.

A part of a concatenated message is acknowledged to the SMSC once stored, so the parts of an
incomplete set are kept in ``sms_inbound_parts`` until it completes or expires, and handed back
to the reassembler when the process starts. A complete message for a number a resource owns with
the SMS inbound capability becomes an ``SMSReceived`` event; a keyword updates the opt-outs and
queues the configured automatic reply, a message of the resource like any other.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from prometheus_client import Counter
from sqlalchemy.orm import Session

from gateway.core.db import Database, new_uuid, utcnow
from gateway.core.settings import Settings
from gateway.events import builder
from gateway.events.service import publish
from gateway.numbers.purchased import number_owner
from gateway.sms.addresses import region_of
from gateway.sms.models import SmsInbound, SmsInboundPart, SmsMessage
from gateway.sms.optouts import set_opt_out
from gateway.sms.quotas import count_sent
from gateway.sms.repository import worker as repository
from gateway.sms.send import message_row, new_message_id
from sms.keywords import KeywordAction, KeywordSets, classify_keyword
from sms.pdu import DeliverSm
from sms.reassembly import AddOutcome, InboundPart, Reassembler, inbound_part_from_pdu
from sms.segmentation import segment_message
from sms.udh import ConcatInfo

log = logging.getLogger("trunkline.smpp.process")

INBOUND_UNROUTED = Counter(
    "trunkline_sms_inbound_unrouted_total",
    "Inbound messages for a number no resource owns with the SMS inbound capability.",
)


def _plus(number: str) -> str:
    return number if number.startswith("+") else "+" + number


def _tlv_int(pdu: DeliverSm, name: str) -> int | None:
    value = pdu.tlvs.get(name)
    return value if isinstance(value, int) else None


class InboundRecorder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keywords = KeywordSets.create(
            settings.sms_optout_keywords, settings.sms_optin_keywords, settings.sms_help_keywords
        )
        self.reassembler = Reassembler(timeout_seconds=settings.sms_reassembly_timeout_seconds)

    def record_mo(self, session: Session, connection_id: str, pdu: DeliverSm, now: datetime) -> None:
        payload_tlv = pdu.tlvs.get("message_payload")
        part = inbound_part_from_pdu(
            source=pdu.source,
            destination=pdu.destination,
            esm_class=pdu.esm_class,
            data_coding=pdu.data_coding,
            short_message=pdu.short_message,
            message_payload=payload_tlv if isinstance(payload_tlv, bytes) else None,
            sar_msg_ref_num=_tlv_int(pdu, "sar_msg_ref_num"),
            sar_total_segments=_tlv_int(pdu, "sar_total_segments"),
            sar_segment_seqnum=_tlv_int(pdu, "sar_segment_seqnum"),
        )
        result = self.reassembler.add(part, time.monotonic())
        concat = part.concat
        if concat is not None and concat.total > 1:
            if result.outcome is AddOutcome.PENDING:
                # kept until the set completes: acknowledged to the SMSC, so it must survive a crash
                session.add(
                    SmsInboundPart(
                        connection_id=connection_id,
                        source=part.source,
                        destination=part.destination,
                        reference=concat.reference,
                        total=concat.total,
                        sequence=concat.sequence,
                        reference_bits=concat.reference_bits,
                        data_coding=part.data_coding,
                        payload=part.payload,
                        udh=part.udh,
                    )
                )
            elif result.outcome is AddOutcome.COMPLETE:
                repository.forget_inbound_parts(
                    session, part.source, part.destination, concat.reference, concat.total
                )
        if result.outcome is not AddOutcome.COMPLETE or result.message is None:
            return
        message = result.message
        sender = _plus(message.source)
        recipient = _plus(message.destination)
        owner = number_owner(session, recipient)
        resource_id = owner.resource_id if owner is not None and "inbound" in owner.sms.split("+") else None
        action = classify_keyword(message.text, self.keywords)
        inbound_id = f"Incoming_{now.strftime('%Y%m%d%H%M%S')}{new_uuid()}"
        session.add(
            SmsInbound(
                id=inbound_id,
                resource_id=resource_id,
                from_number=sender,
                to_number=recipient,
                text=message.text,
                segment_count=message.segment_count,
                keyword=None if action is KeywordAction.NONE else action.value,
                connection_id=connection_id,
                received_at=now,
            )
        )
        if resource_id is None:
            INBOUND_UNROUTED.inc()
            log.warning("inbound SMS for %s: no resource owns it with SMS inbound; not delivered", recipient)
            return
        reply = ""
        if action is KeywordAction.OPT_OUT:
            set_opt_out(session, recipient, sender, opted_out=True)
            reply = self.settings.sms_optout_reply
        elif action is KeywordAction.OPT_IN:
            set_opt_out(session, recipient, sender, opted_out=False)
            reply = self.settings.sms_optin_reply
        elif action is KeywordAction.HELP:
            reply = self.settings.sms_help_reply
        publish(
            session,
            resource_id=resource_id,
            event_type=builder.SMS_RECEIVED,
            subject=builder.phone_subject(recipient),
            data=builder.sms_received_data(
                inbound_id, sender, recipient, message.text, now, message.segment_count
            ),
            event_time=now,
            event_id=inbound_id,
        )
        if reply:
            self._reply(session, resource_id, recipient, sender, reply, now)

    def _reply(
        self, session: Session, resource_id: str, sender: str, recipient: str, text: str, now: datetime
    ) -> None:
        """Queue the automatic reply to a keyword: a message of the resource, counted by its quotas."""
        segmented = segment_message(text)
        country = region_of(recipient)
        count_sent(session, resource_id, country, now)
        row = message_row(
            new_message_id(now),
            resource_id=resource_id,
            sender=sender,
            to=recipient,
            country=country,
            text=text,
            segment_count=len(segmented.segments),
            data_coding=int(segmented.data_coding),
            report_timeout_seconds=self.settings.sms_delivery_report_timeout_seconds,
            now=now,
        )
        session.add(SmsMessage(**row))

    def restore_parts(self, database: Database) -> int:
        """Hand the parts a previous run kept back to the reassembler (aged by their receipt time)."""
        with database.read_session() as session:
            rows = repository.inbound_parts(session)
        now_wall, now_mono = utcnow(), time.monotonic()
        for row in rows:
            part = InboundPart(
                row.source,
                row.destination,
                row.data_coding,
                row.payload,
                ConcatInfo(row.reference, row.total, row.sequence, row.reference_bits),
                row.udh,
            )
            age = (now_wall - row.received_at).total_seconds()
            self.reassembler.add(part, now_mono - max(0.0, age))
        return len(rows)

    def expire_sets(self, database: Database) -> None:
        """Give up the sets whose parts stopped coming (and forget their kept parts)."""
        expired_sets = self.reassembler.expire(time.monotonic())
        if not expired_sets:
            return
        with database.session() as session:
            for expired in expired_sets:
                log.warning("inbound SMS parts given up: %s missing %s", expired.key, expired.missing)
                key = expired.key
                repository.forget_inbound_parts(
                    session, key.source, key.destination, key.reference, key.total
                )
