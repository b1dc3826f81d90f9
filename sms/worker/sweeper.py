"""The sweeper (on the writer thread, every half second): what time alone decides.

A submitted message whose report window ended without a final receipt for every part expires,
and so does a queued one that could not be submitted within its window (no bind came up). A
receipt stranded as pending is applied (with several SMPP processes, one can keep a receipt as
pending while another commits the resp it belongs to). Inbound sets whose parts stopped coming
are given up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.sms.lifecycle import QueueExpired, SmsState
from gateway.sms.repository import worker as repository
from sms.worker.inbound import InboundRecorder
from sms.worker.outcomes import record, record_receipts, record_report_timeout

STRANDED_RECEIPT_AGE = timedelta(seconds=30)


class Sweeper:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        inbound: InboundRecorder,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.settings = settings
        self.inbound = inbound
        self.clock = clock
        self.postgres = database.engine.dialect.name == "postgresql"

    def sweep(self) -> None:
        now = self.clock()
        with self.database.session() as session:
            for message in repository.reports_overdue(session, now, postgres=self.postgres):
                record_report_timeout(session, message, repository.segments_of(session, [message.id]), now)
            # Queued too long (no bind came up in the message's whole report window): expire.
            oldest = now - timedelta(seconds=self.settings.sms_delivery_report_timeout_seconds)
            for message in repository.queued_since_before(session, oldest, now, postgres=self.postgres):
                if message.created_at + timedelta(seconds=message.delivery_report_timeout_seconds) < now:
                    record(session, message, QueueExpired(message.segment_count), now)
            self.apply_stranded_receipts(session, now)
        self.inbound.expire_sets(self.database)

    def apply_stranded_receipts(self, session: Session, now: datetime) -> None:
        """Apply receipts kept as pending whose segment has been stored since.

        With several SMPP processes, a receipt can reach one while another is committing the
        submit_sm_resp of the same segment: the first keeps it as pending, and the second looked
        for pending receipts just before that commit. Waiting well past the response timeout
        leaves the usual early receipt to the writer, which applies it with the resp.
        """
        touched: set[str] = set()
        for early, stored in repository.stranded_receipts(
            session, now - STRANDED_RECEIPT_AGE, postgres=self.postgres
        ):
            stored.receipt_state = early.state
            stored.receipt_error = early.error
            stored.receipt_at = early.received_at
            repository.forget_pending_receipt(session, early)
            touched.add(stored.message_id)
        for message_id in touched:
            message = repository.message(session, message_id)
            if message is not None and message.state == SmsState.SUBMITTED:
                record_receipts(session, message, repository.segments_of(session, [message_id]), now)
