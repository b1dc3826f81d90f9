"""The rows one writer transaction's general path needs, read with a few queries up front
instead of several per item."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from gateway.sms.models import SmsMessage, SmsPendingReceipt, SmsSegment
from gateway.sms.repository import worker as repository
from sms.worker.routing import RoutingTable
from sms.worker.work import Inbound, SubmitBatch, Work


@dataclass
class BatchCache:
    """Messages and their segments by id, segments by (connection, SMSC id), and receipts kept as
    pending for the SMSC ids of this batch's resps."""

    messages: dict[str, SmsMessage] = field(default_factory=dict)
    segments: dict[str, dict[int, SmsSegment]] = field(default_factory=dict)
    by_smsc_id: dict[tuple[str, str], SmsSegment] = field(default_factory=dict)
    pending: dict[tuple[str, str], list[SmsPendingReceipt]] = field(default_factory=dict)


def prefetch(session: Session, batch: Sequence[Work], routing: RoutingTable) -> BatchCache:
    cache = BatchCache()
    message_ids = {w.item.message_id for w in batch if isinstance(w.item, SubmitBatch)}
    new_ids, receipt_ids = _smsc_ids(batch, routing)
    for connection_id, ids in receipt_ids.items():
        for segment in repository.segments_by_smsc_ids(session, connection_id, ids):
            message_ids.add(segment.message_id)
    for connection_id, ids in new_ids.items():
        for receipt_row in repository.pending_receipts(session, connection_id, ids):
            key = (receipt_row.connection_id, receipt_row.smsc_message_id)
            cache.pending.setdefault(key, []).append(receipt_row)
    if message_ids:
        for message in repository.messages_by_ids(session, message_ids):
            cache.messages[message.id] = message
            cache.segments[message.id] = {}
        for segment in repository.segments_of(session, message_ids):
            cache.segments[segment.message_id][segment.sequence] = segment
            if segment.connection_id and segment.smsc_message_id:
                cache.by_smsc_id[(segment.connection_id, segment.smsc_message_id)] = segment
    return cache


def _smsc_ids(
    batch: Sequence[Work], routing: RoutingTable
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The SMSC ids the batch's resps and receipts name, by connection, in the form they are
    stored in (each connection's notation)."""
    new_ids: dict[str, set[str]] = {}
    receipt_ids: dict[str, set[str]] = {}
    for work in batch:
        item = work.item
        if isinstance(item, SubmitBatch):
            for _, result in item.results:
                if result.message_id is not None:
                    smsc_id = routing.canonical(item.connection_id, result.message_id, receipt=False)
                    new_ids.setdefault(item.connection_id, set()).add(smsc_id)
        elif isinstance(item, Inbound) and item.pdu.is_receipt:
            receipt = item.receipt
            if receipt is not None and receipt.message_id is not None:
                smsc_id = routing.canonical(item.connection_id, receipt.message_id, receipt=True)
                receipt_ids.setdefault(item.connection_id, set()).add(smsc_id)
    return new_ids, receipt_ids
