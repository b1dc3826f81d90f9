"""The writer thread: records what the submitter and the binds hand over, in batched transactions.

Submit outcomes, no-routes, receipts and MO messages share transactions: the writer gathers what
comes within the linger time (up to WRITE_BATCH items) and records it in one. First, in bulk, the
outcomes of steady state: first submits whose every part the SMSC accepted, and final receipts
that finish one-part messages; then the rest one item at a time through the ORM (the general
path). Should the batch fail, each item is recorded alone, so one bad item costs only itself.
A delivery's deliver_sm_resp goes out once the transaction holding it has committed (the SMSC
sends again what it was refused), and a message's claim is released once its outcome is stored.

Every state change goes through gateway/sms/lifecycle.py, in bulk as one by one.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.sms import lifecycle
from gateway.sms.lifecycle import (
    Change,
    MessageOutcome,
    NoBoundConnection,
    PartOutcome,
    ReceiptsRecorded,
    SegmentSubmitState,
    SmsState,
    SubmitAccepted,
    SubmitRefused,
    SubmitTemporaryError,
    Unroutable,
)
from gateway.sms.models import SmsMessage, SmsSegment
from gateway.sms.repository import worker as repository
from gateway.sms.repository.worker import NewSegment
from sms.bind_types import SubmitOutcome, SubmitResult
from sms.pdu import ESME_ROK, ESME_RX_T_APPN
from sms.status import backoff_delay
from sms.worker import receipts
from sms.worker.batch import BatchCache, prefetch
from sms.worker.inbound import InboundRecorder
from sms.worker.outcomes import bulk_rows, part_receipts, record
from sms.worker.routing import RoutingTable, tried_list
from sms.worker.work import Inbound, NoRoute, SubmitBatch, WakeUp, Work, WorkItem

# A message waiting for a bind is released the moment a bind comes up in this process; this is
# when it is looked at again otherwise (its bind may be up in another SMPP process).
BIND_WAIT_BACKSTOP_SECONDS = 5.0

log = logging.getLogger("trunkline.smpp.process")

SWEEP_SECONDS = 0.5
WRITE_BATCH = 500

PART_OUTCOMES = {
    SubmitOutcome.ACCEPTED: PartOutcome.ACCEPTED,
    SubmitOutcome.FAILED: PartOutcome.REFUSED,
    SubmitOutcome.RETRY: PartOutcome.TEMPORARY_ERROR,
    SubmitOutcome.UNKNOWN: PartOutcome.UNKNOWN,
}
"""The bind's outcome of a submit_sm, as the lifecycle counts it."""


def part_outcome(result: SubmitResult) -> PartOutcome:
    if result.outcome is SubmitOutcome.ACCEPTED and result.message_id is None:
        # no id to match its receipts with: as if not taken (the bind always gives one, '' at worst)
        return PartOutcome.TEMPORARY_ERROR
    return PART_OUTCOMES[result.outcome]


class Submitted(NamedTuple):
    """A first submit whose every part the SMSC accepted, as the bulk path records it."""

    message_id: str
    connection_id: str
    report_timeout_seconds: int
    segment_count: int  # in the coding it was sent in
    data_coding: int


class Writer:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        routing: Callable[[], RoutingTable],
        inbound: InboundRecorder,
        *,
        released: Callable[[str], None] = lambda message_id: None,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.database = database
        self.settings = settings
        self.routing = routing  # the process's current routing table
        self.inbound = inbound
        self.released = released  # a message's claimed outcome is stored: room for another
        self.clock = clock
        self.jitter = jitter  # spreading retries, not a secret
        self.work: queue.Queue[Work] = queue.Queue()
        self.postgres = database.engine.dialect.name == "postgresql"

    def hand_over(self, work: Work) -> None:
        self.work.put(work)

    # the loop ---------------------------------------------------------------------------------------

    def loop(self, sweep: Callable[[], None], stopped: Callable[[], bool]) -> None:
        """Write what comes, sweep every SWEEP_SECONDS, until ``stopped()`` and nothing is left."""
        next_sweep = 0.0
        while True:
            try:
                first = self.work.get(timeout=SWEEP_SECONDS)
            except queue.Empty:
                first = None
            if first is not None:
                batch = [first]
                self.gather(batch)
                self.write(batch)
            if time.monotonic() >= next_sweep:
                try:
                    sweep()
                except Exception:
                    log.exception("sweep failed")
                next_sweep = time.monotonic() + SWEEP_SECONDS
            if stopped() and self.work.empty():
                return

    def start(self, sweep: Callable[[], None], stopped: Callable[[], bool]) -> threading.Thread:
        thread = threading.Thread(target=self.loop, args=(sweep, stopped), name="sms-writer", daemon=True)
        thread.start()
        return thread

    def gather(self, batch: list[Work]) -> None:
        """Add to ``batch`` what comes within the linger time, up to WRITE_BATCH items."""
        linger_until = time.monotonic() + self.settings.sms_write_linger_seconds
        while len(batch) < WRITE_BATCH:
            try:
                batch.append(self.work.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = linger_until - time.monotonic()
            if remaining <= 0:
                return
            try:
                batch.append(self.work.get(timeout=remaining))
            except queue.Empty:
                return

    # a batch ----------------------------------------------------------------------------------------

    def write(self, batch: Sequence[Work]) -> None:
        try:
            self.write_in_bulk(batch)
        except Exception:
            log.exception("writing a batch of %d failed; applying one by one", len(batch))
            self.write_one_by_one(batch)
        finally:
            for work in batch:
                if isinstance(work.item, SubmitBatch | NoRoute):
                    self.released(work.item.message_id)
                if work.answer is not None:
                    # the SMSC resends what was not persisted
                    work.answer(ESME_RX_T_APPN if work.error else ESME_ROK)

    def write_in_bulk(self, batch: Sequence[Work]) -> None:
        """The whole batch in one transaction: the bulk paths first, then the general path."""
        with self.database.session() as session:
            rest = self.record_first_submits(session, batch)
            rest = receipts.record_final_receipts(
                session, rest, self.routing(), postgres=self.postgres, clock=self.clock
            )
            cache = prefetch(session, rest, self.routing())
            for work in rest:
                self.apply(session, work.item, cache)

    def write_one_by_one(self, batch: Sequence[Work]) -> None:
        """Each item in a transaction of its own, through the general path; an item that fails
        keeps its error (its deliver_sm_resp then asks the SMSC to send it again)."""
        for work in batch:
            try:
                with self.database.session() as session:
                    self.apply(session, work.item, prefetch(session, [work], self.routing()))
            except Exception as single:
                log.exception("writing %s failed", type(work.item).__name__)
                work.error.append(single)

    # first submits, in bulk -------------------------------------------------------------------------------

    def record_first_submits(self, session: Session, batch: Sequence[Work]) -> list[Work]:
        """Record, in bulk, first submits whose every part the SMSC accepted; return the rest.

        This is nearly every outcome in steady state, and the ORM's unit of work costs several
        times what these set-based statements (a few per batch) do. It runs before the other items of the
        batch, so a receipt later in the batch (or earlier: a receipt before its resp) finds its
        segment in the same transaction. A submit that matches a receipt stored earlier as
        pending takes the general path, which applies that receipt.
        """
        candidates: dict[str, SubmitBatch] = {}
        rest: list[Work] = []
        for work in batch:
            if isinstance(work.item, SubmitBatch) and _wholly_accepted_first_submit(work.item):
                candidates[work.item.message_id] = work.item
            else:
                rest.append(work)
        if not candidates:
            return rest
        routing = self.routing()
        segments: list[NewSegment] = []
        for item in candidates.values():
            for sequence, result in item.results:
                assert result.message_id is not None
                smsc_id = routing.canonical(item.connection_id, result.message_id, receipt=False)
                segments.append(
                    NewSegment(item.message_id, sequence, item.connection_id, smsc_id, result.status)
                )
        for message_id in repository.messages_with_pending_receipts(session, segments):
            rest.append(Work(candidates.pop(message_id)))
        if not candidates:
            return rest
        segments = [segment for segment in segments if segment.message_id in candidates]
        now = self.clock()
        submitted = [
            Submitted(
                item.message_id, item.connection_id, item.report_timeout_seconds, item.total, item.data_coding
            )
            for item in candidates.values()
        ]
        repository.insert_accepted_segments(session, segments)
        # Only a queued message becomes submitted; one finished meanwhile (as in the general path)
        # keeps its state, and its claim no longer matters.
        # The lifecycle is pure: one change per distinct (connection, report window) of the batch.
        changes: dict[tuple[str, int], Change] = {}
        entries: list[tuple[dict[str, Any], Change]] = []
        for message in submitted:
            key = (message.connection_id, message.report_timeout_seconds)
            change = changes.get(key)
            if change is None:
                change = lifecycle.transition(SmsState.QUEUED, SubmitAccepted(*key), now)
                assert change is not None
                changes[key] = change
            own = {
                "id": message.message_id,
                "segment_count": message.segment_count,
                "data_coding": message.data_coding,
            }
            entries.append((own, change))
        rows, constants = bulk_rows(entries)
        repository.update_messages(session, rows, constants, state=SmsState.QUEUED)
        return rest

    # the general path ---------------------------------------------------------------------------------

    def apply(self, session: Session, item: WorkItem, cache: BatchCache) -> None:
        if isinstance(item, SubmitBatch):
            self.record_submits(session, item, cache)
        elif isinstance(item, NoRoute):
            self.record_no_route(session, item)
        elif isinstance(item, Inbound):
            if item.pdu.is_receipt:
                receipts.record_receipt(session, item, cache, self.routing(), self.clock())
            else:
                self.inbound.record_mo(session, item.connection_id, item.pdu, self.clock())
        else:
            assert isinstance(item, WakeUp)

    def retry_at(self, attempts: int, now: datetime) -> datetime:
        delay = backoff_delay(
            max(1, attempts),
            base_seconds=self.settings.sms_retry_base_seconds,
            cap_seconds=self.settings.sms_retry_max_seconds,
            jitter=self.jitter() * 0.2,
        )
        return now + timedelta(seconds=delay)

    def record_no_route(self, session: Session, item: NoRoute) -> None:
        message = repository.message(session, item.message_id)
        if message is None or message.state != SmsState.QUEUED:
            return
        now = self.clock()
        outcome: MessageOutcome
        if item.permanent:
            outcome = Unroutable(item.reason, message.segment_count)
        else:
            # not an attempt: no backoff of its own; released when a bind of the route comes up
            wait = timedelta(seconds=min(self.settings.sms_retry_max_seconds, BIND_WAIT_BACKSTOP_SECONDS))
            outcome = NoBoundConnection(now + wait, attempts=max(0, message.attempts - 1))
        record(session, message, outcome, now)

    def record_submits(self, session: Session, batch: SubmitBatch, cache: BatchCache) -> None:
        message = cache.messages.get(batch.message_id)
        if message is None:
            return
        now = self.clock()
        segments = cache.segments.setdefault(message.id, {})
        accepted_before = any(s.submit_state == SegmentSubmitState.ACCEPTED for s in segments.values())
        if batch.total and not accepted_before:
            message.segment_count = batch.total  # a connection may have re-coded it (UCS-2 only)
            message.data_coding = batch.data_coding
        unknown = False
        refused: SubmitResult | None = None
        for sequence, result in batch.results:
            segment = segments.get(sequence)
            if segment is None:
                segment = SmsSegment(
                    message_id=message.id, sequence=sequence, submit_state=SegmentSubmitState.PENDING
                )
                session.add(segment)
                segments[sequence] = segment
            if segment.submit_state == SegmentSubmitState.ACCEPTED:
                continue
            segment.submit_status = result.status
            outcome = part_outcome(result)
            if outcome is PartOutcome.ACCEPTED:
                self._accept(session, segment, batch.connection_id, result, cache)
            elif outcome is PartOutcome.REFUSED:
                refused = result
            elif outcome is PartOutcome.UNKNOWN:
                unknown = True
        message.claimed_until = None
        message.in_doubt = unknown
        if message.state != SmsState.QUEUED:
            return  # finished meanwhile (e.g. a receipt that came before the resp)
        accepted = sum(1 for s in segments.values() if s.submit_state == SegmentSubmitState.ACCEPTED)
        change = record(session, message, self._submit_outcome(message, batch, accepted, refused, now), now)
        if change is not None and change.after is SmsState.SUBMITTED:
            # receipts that came before the resp may finish it at once
            record(session, message, ReceiptsRecorded(part_receipts(message, segments.values())), now)

    def _submit_outcome(
        self,
        message: SmsMessage,
        batch: SubmitBatch,
        accepted: int,
        refused: SubmitResult | None,
        now: datetime,
    ) -> MessageOutcome:
        """What this submit came to for the whole message."""
        if accepted >= message.segment_count:
            return SubmitAccepted(batch.connection_id, message.delivery_report_timeout_seconds)
        if refused is not None:
            tried = [*tried_list(message.tried_connections), batch.connection_id]
            failover = self.routing().has_untried(message.to_number, tried)
            return SubmitRefused(refused.status, ",".join(tried), failover, message.segment_count)
        return SubmitTemporaryError(self.retry_at(message.attempts, now))

    def _accept(
        self,
        session: Session,
        segment: SmsSegment,
        connection_id: str,
        result: SubmitResult,
        cache: BatchCache,
    ) -> None:
        """Store an accepted part's SMSC id, and the receipts that came for it before its resp."""
        assert result.message_id is not None
        segment.connection_id = connection_id
        segment.smsc_message_id = self.routing().canonical(connection_id, result.message_id, receipt=False)
        segment.submit_state = SegmentSubmitState.ACCEPTED
        key = (connection_id, segment.smsc_message_id)
        cache.by_smsc_id[key] = segment
        for early in cache.pending.pop(key, []):
            segment.receipt_state = early.state
            segment.receipt_error = early.error
            segment.receipt_at = early.received_at
            repository.forget_pending_receipt(session, early)  # came earlier in this same batch


def _wholly_accepted_first_submit(item: SubmitBatch) -> bool:
    return (
        item.first_attempt
        and item.total > 0
        and len(item.results) == item.total
        and all(part_outcome(r) is PartOutcome.ACCEPTED for _, r in item.results)
    )
