"""Recording delivery receipts: on the part they name, then on its message through the lifecycle.

Two paths, held to the same rows and events by tests/sms/worker/test_writer.py: in bulk, the
common case of steady state (a final receipt finishing a one-part message), a few statements for
a whole batch; one by one (ORM), everything else. A receipt whose part is not stored yet (it came
before its submit_sm_resp was recorded) is kept as pending, and applied with that resp.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy.orm import Session

from gateway.core.db import utcnow
from gateway.events.service import NewEvent, publish_many
from gateway.sms import lifecycle
from gateway.sms.lifecycle import PartReceipt, ReceiptKind, ReceiptsRecorded, SmsState, receipt_kind
from gateway.sms.models import SmsPendingReceipt
from gateway.sms.repository import receipt_targets
from gateway.sms.repository import worker as repository
from sms.receipts import DeliveryReceipt
from sms.worker.batch import BatchCache
from sms.worker.outcomes import bulk_rows, new_event, record_receipts
from sms.worker.routing import RoutingTable
from sms.worker.work import Inbound, Work

log = logging.getLogger("trunkline.smpp.process")

RECEIPTS_EARLY = Counter(
    "trunkline_sms_receipts_before_resp_total",
    "Receipts that arrived before their submit_sm_resp was stored.",
)

Clock = Callable[[], datetime]


def record_final_receipts(
    session: Session, batch: list[Work], routing: RoutingTable, *, postgres: bool, clock: Clock = utcnow
) -> list[Work]:
    """Record, in bulk, final receipts that finish a one-part message; return the rest.

    The other common case of steady state (after first submits). Anything else (a part of a
    longer message, an intermediate state, a receipt with no stored segment yet, two receipts for
    one id in this batch) takes the general path, after these.
    """
    keyed: list[tuple[Work, tuple[str, str], DeliveryReceipt]] = []
    seen: dict[tuple[str, str], int] = {}
    rest: list[Work] = []
    for work in batch:
        item = work.item
        receipt = item.receipt if isinstance(item, Inbound) else None
        if receipt is None or receipt.message_id is None or receipt.state is None:
            rest.append(work)
            continue
        assert isinstance(item, Inbound)
        key = (item.connection_id, routing.canonical(item.connection_id, receipt.message_id, receipt=True))
        seen[key] = seen.get(key, 0) + 1
        keyed.append((work, key, receipt))
    candidates = {
        key
        for _, key, receipt in keyed
        if seen[key] == 1 and receipt.state is not None and receipt_kind(receipt.state) is ReceiptKind.FINAL
    }
    targets = _one_part_submitted(session, candidates, postgres=postgres)
    now = clock()
    segment_rows: list[dict[str, Any]] = []
    entries: list[tuple[dict[str, Any], lifecycle.Change]] = []
    events: dict[str, NewEvent] = {}
    # The lifecycle is pure: one change per distinct (message state, receipt) of the batch.
    changes: dict[tuple[str, PartReceipt], lifecycle.Change] = {}
    for work, key, receipt in keyed:
        target = targets.get(key)
        if target is None or seen[key] != 1:
            rest.append(work)
            continue
        assert receipt.state is not None
        part = PartReceipt(receipt.state, receipt.error)
        change = changes.get((target.state, part))
        if change is None:
            change = lifecycle.transition(target.state, ReceiptsRecorded((part,)), now)
            assert change is not None  # a final receipt for a submitted message
            changes[(target.state, part)] = change
        segment_rows.append(
            {"message_id": target.id, "receipt_state": int(receipt.state), "receipt_error": receipt.error}
        )
        entries.append(({"id": target.id}, change))
        event = change.event(target)
        if event is not None:
            events[target.id] = new_event(event)
    if entries:
        repository.record_first_part_receipts(session, segment_rows, now)
        # Another SMPP process may have finished one meanwhile: report only what this one did.
        rows, constants = bulk_rows(entries)
        finished = repository.update_messages(session, rows, constants, state=SmsState.SUBMITTED)
        publish_many(session, [event for message_id, event in events.items() if message_id in finished])
    return rest


def _one_part_submitted(
    session: Session, keys: set[tuple[str, str]], *, postgres: bool
) -> dict[tuple[str, str], Any]:
    """The submitted one-part messages whose only segment has these (connection, SMSC id) keys."""
    if not keys:
        return {}
    found = receipt_targets.segment_targets(session, keys, postgres=postgres)
    return {
        key: rows[0]
        for key, rows in found.items()
        if len(rows) == 1
        and rows[0].state == SmsState.SUBMITTED
        and rows[0].segment_count == 1
        and rows[0].sequence == 1
    }


def record_receipt(
    session: Session, inbound: Inbound, cache: BatchCache, routing: RoutingTable, now: datetime
) -> None:
    """The general path: store the receipt on its part (or as pending, when the part is not
    stored yet) and finish the message if every part now has a final receipt."""
    connection_id, receipt = inbound.connection_id, inbound.receipt
    if receipt is None or receipt.message_id is None or receipt.state is None:
        log.warning("unparseable receipt on %s: %r", connection_id, inbound.pdu.payload[:160])
        return
    smsc_id = routing.canonical(connection_id, receipt.message_id, receipt=True)
    key = (connection_id, smsc_id)
    segment = cache.by_smsc_id.get(key)
    if segment is None:
        RECEIPTS_EARLY.inc()
        early = SmsPendingReceipt(
            connection_id=connection_id,
            smsc_message_id=smsc_id,
            state=int(receipt.state),
            error=receipt.error,
            received_at=now,
        )
        session.add(early)
        cache.pending.setdefault(key, []).append(early)
        return
    segment.receipt_state = int(receipt.state)
    segment.receipt_error = receipt.error
    segment.receipt_at = now
    message = cache.messages.get(segment.message_id)
    if message is not None:
        record_receipts(session, message, cache.segments.get(message.id, {}).values(), now)
