"""Writing the message lifecycle's changes one row at a time (the writer's general path, the
sweeper): the change's columns on the ORM row and its event in the outbox, in the caller's
transaction. What the change is, is gateway/sms/lifecycle.py's to say; the bulk writer writes the
same changes with a few statements (sms/worker/writer.py, sms/worker/receipts.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

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


def bulk_rows(
    entries: Sequence[tuple[dict[str, Any], Change]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One bulk UPDATE's rows for these (row's own columns, change) entries, and the values every
    change sets alike (set once, as constants). The changes set the same columns, as one
    statement needs; a batch has few distinct ones (the lifecycle is pure, and the callers
    compute each distinct outcome's change once)."""
    distinct = list({id(change): change for _, change in entries}.values())
    if not distinct:
        return [], {}
    columns = distinct[0].values.keys()
    assert all(change.values.keys() == columns for change in distinct)
    constants = {
        name: value
        for name, value in distinct[0].values.items()
        if all(change.values[name] == value for change in distinct)
    }
    own = {
        id(change): {name: value for name, value in change.values.items() if name not in constants}
        for change in distinct
    }
    return [{**row, **own[id(change)]} for row, change in entries], constants


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
