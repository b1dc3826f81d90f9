"""Claims: taking queued messages to submit, by a send job's ids or for the reconciler.

A claim is one transaction that marks its rows ``in_doubt`` with a lease (``claimed_until``)
before anything is written to the SMSC. A later claim that finds a row still in doubt (the
process died, or a bind answered UNKNOWN: written, no resp) counts the parts it resubmits in
``possible_duplicates``: the only way a duplicate can reach a handset, and always counted.

Send jobs come from the broker's consumer thread as tickets: the process claims their ids a
window's worth at a time, and a job is acknowledged once every id went through a claim.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter

from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.sms.repository import worker as repository
from sms.segmentation import ReferenceAllocator

POSSIBLE_DUPLICATES = Counter(
    "trunkline_sms_possible_duplicates_total",
    "Segments resubmitted after a submit whose outcome was unknown (crash or no resp).",
)
RECONCILED = Counter(
    "trunkline_sms_reconciled_first_attempts_total",
    "Messages the reconciler claimed for a first attempt: their send job never came in time.",
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """What submitting a claimed message needs (read with the claim, no ORM object)."""

    id: str
    from_number: str
    to_number: str
    text: str
    data_coding: int
    segment_count: int
    concat_reference: int
    tried_connections: str
    error: str | None
    first_attempt: bool = False
    report_timeout_seconds: int = 0
    validity_period_seconds: int | None = None
    accepted: frozenset[int] = frozenset()  # sequences of the parts the SMSC accepted before


class Claimer:
    def __init__(self, database: Database, settings: Settings, references: ReferenceAllocator) -> None:
        self.database = database
        self.settings = settings
        self.references = references
        self.postgres = database.engine.dialect.name == "postgresql"

    def claim(self, room: int, message_ids: list[str] | None, busy: set[str], now: datetime) -> list[Claimed]:
        """Claim (one transaction) up to ``room`` queued, due messages not under a live claim:
        those of ``message_ids``, or, with None, what the reconciler is to take. ``busy``: what
        this process still holds (its lease ran out in flight), which is not submitted twice."""
        lease = timedelta(seconds=self.settings.sms_claim_lease_seconds)
        by_id = message_ids is not None
        parameters: dict[str, Any] = {"now": now, "until": now + lease, "room": room}
        if message_ids is not None:
            parameters["ids"] = message_ids
        else:
            parameters["grace_before"] = now - timedelta(seconds=self.settings.sms_job_grace_seconds)
        claimed: list[Claimed] = []
        with self.database.session() as session:
            found = repository.claim_rows(
                session, postgres=self.postgres, by_id=by_id, parameters=parameters, busy=busy
            )
            rows = [row for row in found if row.id not in busy]
            if not rows:
                return []
            if message_ids is None:
                RECONCILED.inc(sum(1 for row in rows if row.attempts == 0))
            accepted = repository.accepted_sequences(session, [row.id for row in rows if row.attempts > 0])
            doubtful: list[dict[str, Any]] = []
            references: list[dict[str, Any]] = []
            for row in rows:
                done = frozenset(accepted.get(row.id, ()))
                reference = row.concat_reference
                if row.in_doubt:
                    count = row.segment_count - len(done)
                    doubtful.append({"key": row.id, "count": count})
                    POSSIBLE_DUPLICATES.inc(count)
                if row.attempts == 0 and row.segment_count > 1:
                    reference = self.references.allocate(row.to_number)
                    references.append({"key": row.id, "reference": reference})
                claimed.append(
                    Claimed(
                        row.id,
                        row.from_number,
                        row.to_number,
                        row.text,
                        row.data_coding,
                        row.segment_count,
                        reference,
                        row.tried_connections,
                        row.error,
                        row.attempts == 0,
                        row.delivery_report_timeout_seconds,
                        row.validity_period_seconds,
                        done,
                    )
                )
            repository.store_claim_details(session, doubtful, references)
        return claimed


@dataclass
class JobTicket:
    """A send job handed over by the consumer, done when all its ids went through a claim."""

    ids: list[str]
    waiting: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.waiting = list(self.ids)


class JobTickets:
    """The send jobs waiting to be claimed, oldest first (shared by the consumer and the claims)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tickets: collections.deque[JobTicket] = collections.deque()

    def add(self, message_ids: list[str]) -> JobTicket:
        ticket = JobTicket(list(message_ids))
        with self.lock:
            self.tickets.append(ticket)
        return ticket

    def take(self, room: int) -> tuple[list[str], list[JobTicket]]:
        """Up to ``room`` ids of waiting jobs, oldest first, and the tickets they came from."""
        taken: list[str] = []
        tickets: list[JobTicket] = []
        with self.lock:
            for ticket in self.tickets:
                if len(taken) >= room:
                    break
                take = ticket.waiting[: room - len(taken)]
                del ticket.waiting[: len(take)]
                taken += take
                tickets.append(ticket)
        return taken, tickets

    def give_back(self, taken: list[str], tickets: list[JobTicket]) -> None:
        """Ids taken for a claim that failed: claimed on the next turn."""
        with self.lock:
            for ticket in reversed(tickets):
                ticket.waiting[:0] = [i for i in taken if i in ticket.ids]

    def finish(self, tickets: list[JobTicket]) -> None:
        """Mark done (the job is then acknowledged) the tickets whose every id was claimed."""
        with self.lock:
            for ticket in tickets:
                if not ticket.waiting:
                    ticket.done.set()
                    self.tickets.remove(ticket)
