"""Writing the message lifecycle's changes one row at a time (the writer's general path, the
sweeper): the change's columns on the ORM row and its event in the outbox, in the caller's
transaction. What the change is, is gateway/sms/lifecycle.py's to say; the bulk writer writes the
same changes with a few statements (sms/worker/writer.py, sms/worker/receipts.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.events.service import NewEvent, publish
from gateway.sms import lifecycle
from gateway.sms.lifecycle import Change, MessageOutcome, PartReceipt, ReceiptsRecorded, ReportTimedOut
from gateway.sms.models import SmsMessage, SmsSegment
from sms.receipts import MessageState as ReceiptState


def new_event(event: lifecycle.ReportEvent) -> NewEvent:
    return NewEvent(
        resource_id=event.resource_id,
        event_type=event.event_type,
        subject=event.subject,
        data=event.data,
        event_time=event.event_time,
        event_id=event.event_id,
    )


def apply_change(session: Session, message: SmsMessage, change: Change) -> None:
    """Set the change's columns on the row and publish its event, if any."""
    for name, value in change.values.items():
        setattr(message, name, value)
    event = change.event(message)
    if event is not None:
        publish(
            session,
            resource_id=event.resource_id,
            event_type=event.event_type,
            subject=event.subject,
            data=event.data,
            event_time=event.event_time,
            event_id=event.event_id,
        )


def record(session: Session, message: SmsMessage, outcome: MessageOutcome, now: datetime) -> Change | None:
    """Apply what ``outcome`` does to the row (nothing, when it came too late for it)."""
    change = lifecycle.transition(message.state, outcome, now)
    if change is not None:
        apply_change(session, message, change)
    return change


def part_receipts(message: SmsMessage, segments: Iterable[SmsSegment]) -> tuple[PartReceipt | None, ...]:
    """The latest receipt of each part of the message, in sequence order (None: none yet)."""
    by_sequence = {s.sequence: s for s in segments}
    parts: list[PartReceipt | None] = []
    for sequence in range(1, message.segment_count + 1):
        segment = by_sequence.get(sequence)
        if segment is None or segment.receipt_state is None:
            parts.append(None)
        else:
            parts.append(PartReceipt(ReceiptState(segment.receipt_state), segment.receipt_error))
    return tuple(parts)


def record_receipts(
    session: Session, message: SmsMessage, segments: Iterable[SmsSegment], now: datetime
) -> None:
    """A part's receipt was stored: finish the message if every part now has a final one."""
    record(session, message, ReceiptsRecorded(part_receipts(message, segments)), now)


def record_report_timeout(
    session: Session, message: SmsMessage, segments: Iterable[SmsSegment], now: datetime
) -> None:
    record(session, message, ReportTimedOut(part_receipts(message, segments)), now)
