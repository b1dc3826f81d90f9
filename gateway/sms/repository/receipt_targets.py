"""The receipt lookup of the SMPP worker: the stored segments of (connection, SMSC message id)
keys with what a receipt needs of their messages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from gateway.core.db import one_of
from gateway.sms.models import SmsMessage, SmsSegment

_messages = cast(Table, SmsMessage.__table__)
_segments = cast(Table, SmsSegment.__table__)

# A receipt's segment and its message are read by two statements, each by its own index (the
# segments by (connection_id, smsc_message_id), their messages by primary key), rather than by a
# join: for a writer batch of a few hundred receipts on a table of some 10,000 rows, the planner
# joined by hashing the whole of sms_messages, a cost that grows with the table
# (tests/gateway/sms/test_plans.py).
_RECEIPT_SEGMENTS = {
    postgres: select(_segments.c.smsc_message_id, _segments.c.message_id, _segments.c.sequence).where(
        _segments.c.connection_id == bindparam("connection_id"),
        one_of(_segments.c.smsc_message_id, "smsc_ids", postgres=postgres),
    )
    for postgres in (True, False)
}
_RECEIPT_MESSAGES = {
    postgres: select(
        _messages.c.id,
        _messages.c.state,
        _messages.c.segment_count,
        _messages.c.enable_delivery_report,
        _messages.c.resource_id,
        _messages.c.from_number,
        _messages.c.to_number,
        _messages.c.tag,
        _messages.c.submitted_at,
    ).where(one_of(_messages.c.id, "ids", postgres=postgres))
    for postgres in (True, False)
}


class SegmentTarget(NamedTuple):
    """A stored segment, by SMSC message id, with what a receipt needs of its message."""

    smsc_message_id: str
    id: str  # the message's
    state: str
    segment_count: int
    sequence: int
    enable_delivery_report: bool
    resource_id: str
    from_number: str
    to_number: str
    tag: str | None
    submitted_at: datetime | None


def segment_targets(
    session: Session, keys: Iterable[tuple[str, str]], *, postgres: bool
) -> dict[tuple[str, str], list[SegmentTarget]]:
    """The stored segments of these (connection, SMSC message id) keys, each with what a receipt
    needs of its message (``id``, ``state``, ``segment_count``, ``sequence``, the report's
    fields), by key."""
    by_connection: dict[str, list[str]] = {}
    for connection_id, smsc_id in keys:
        by_connection.setdefault(connection_id, []).append(smsc_id)
    connection = session.connection()
    segments: list[tuple[str, Any]] = []
    for connection_id, smsc_ids in by_connection.items():
        found = connection.execute(
            _RECEIPT_SEGMENTS[postgres], {"connection_id": connection_id, "smsc_ids": smsc_ids}
        )
        segments.extend((connection_id, row) for row in found)
    if not segments:
        return {}
    message_ids = list({row.message_id for _, row in segments})
    messages = {row.id: row for row in connection.execute(_RECEIPT_MESSAGES[postgres], {"ids": message_ids})}
    targets: dict[tuple[str, str], list[SegmentTarget]] = {}
    for connection_id, segment in segments:
        m = messages.get(segment.message_id)
        if m is None:  # deleted meanwhile (retention)
            continue
        targets.setdefault((connection_id, segment.smsc_message_id), []).append(
            SegmentTarget(
                segment.smsc_message_id,
                m.id,
                m.state,
                m.segment_count,
                segment.sequence,
                m.enable_delivery_report,
                m.resource_id,
                m.from_number,
                m.to_number,
                m.tag,
                m.submitted_at,
            )
        )
    return targets
