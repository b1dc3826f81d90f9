"""``trunkline smpp``: one persistent bind per configured connection, fed by Celery send jobs.

The state of every message is its ``sms_messages`` row. ``POST /sms`` commits each accepted
message as a ``queued`` row in the request's transaction, then publishes a send job naming it
(gateway/sms/jobs.py, Celery on Redis). This process consumes those jobs and claims their rows
by id (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes share the work;
only queued, due rows not under a live claim, so a duplicate job claims nothing), submits their
segments on a bind chosen by destination prefix, and records the outcome. A job is acknowledged
only after its claim committed. The broker may lose jobs (a Redis restart, a publish while it
was away): a reconciler, a slower poll of the table, claims due retries and first attempts whose
job has not come within ``sms_job_grace_seconds``. A process that dies mid-batch leaves claims
that expire after ``sms_claim_lease_seconds`` and are taken again by the reconciler.

Exactly-once where it can be had:
  - a segment whose submit_sm_resp (SMSC message id) was recorded is never submitted again;
  - a claim is committed before anything is written to the SMSC and marks the message
    ``in_doubt`` until its outcome is recorded. A later claim that finds it still in doubt (the
    process died, or the bind answered UNKNOWN: written, no resp) counts the unacknowledged
    segments it resubmits in ``possible_duplicates``: the only way a duplicate can reach a
    handset, and always counted.

Receipts and MO messages are persisted before their deliver_sm_resp goes out (the bind's
``ack_after_callbacks``, with a deferred callback): the callback hands them to the writer thread,
which answers each once the batch holding it has committed, so deliveries share transactions.
"""

from __future__ import annotations

import collections
import functools
import logging
import queue
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from prometheus_client import Counter
from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from gateway.core.bulk import update_rows
from gateway.core.db import Database, new_uuid, one_of, utcnow
from gateway.core.settings import Settings
from gateway.events import builder
from gateway.events.service import NewEvent, publish, publish_many
from gateway.numbers.purchased import number_owner
from gateway.sms.addresses import region_of
from gateway.sms.connections import apply_config_file
from gateway.sms.jobs import SendJobConsumer
from gateway.sms.models import (
    SmppConnection,
    SmppRoute,
    SmsInbound,
    SmsInboundPart,
    SmsMessage,
    SmsPendingReceipt,
    SmsSegment,
)
from gateway.sms.optouts import set_opt_out
from gateway.sms.quotas import count_sent
from gateway.sms.reports import report_data, report_of
from gateway.sms.send import new_message_id
from sms.bind import DeferredDeliverCallback, DeliverAnswer, SmppBind
from sms.bind_types import BindConfig, BindMode, BindState, SubmitOutcome, SubmitRequest, SubmitResult
from sms.encoding import DataCoding
from sms.keywords import KeywordAction, KeywordSets, classify_keyword
from sms.pdu import ESME_ROK, ESME_RX_T_APPN, DeliverSm
from sms.reassembly import AddOutcome, InboundPart, Reassembler, inbound_part_from_pdu
from sms.receipts import (
    DeliveryReceipt,
    MessageIdFormat,
    MessageState,
    acs_delivery_status,
    aggregate_segment_states,
    canonical_message_id,
    parse_delivery_receipt,
)
from sms.segmentation import ConcatenationMode, ReferenceAllocator, segment_message
from sms.status import backoff_delay, describe_command_status
from sms.udh import ConcatInfo
from sms.validity import relative_validity_period

log = logging.getLogger("trunkline.smpp.process")

INBOUND_UNROUTED = Counter(
    "trunkline_sms_inbound_unrouted_total",
    "Inbound messages for a number no resource owns with the SMS inbound capability.",
)
POSSIBLE_DUPLICATES = Counter(
    "trunkline_sms_possible_duplicates_total",
    "Segments resubmitted after a submit whose outcome was unknown (crash or no resp).",
)
RECONCILED = Counter(
    "trunkline_sms_reconciled_first_attempts_total",
    "Messages the reconciler claimed for a first attempt: their send job never came in time.",
)
RECEIPTS_EARLY = Counter(
    "trunkline_sms_receipts_before_resp_total",
    "Receipts that arrived before their submit_sm_resp was stored.",
)

CONFIG_RELOAD_SECONDS = 2.0
SWEEP_SECONDS = 0.5
WRITE_BATCH = 500
STRANDED_RECEIPT_AGE = timedelta(seconds=30)


# Recording first submits, the bulk of the writer's work (see _record_first_submits): on PostgreSQL
# one statement over arrays, as gateway.core.bulk does for updates.
_PG_INSERT_SEGMENTS = text(
    """
    INSERT INTO sms_segments
        (message_id, sequence, connection_id, smsc_message_id, submit_state, submit_status)
    SELECT u.message_id, u.sequence, u.connection_id, u.smsc_message_id, 'accepted', u.submit_status
    FROM unnest(CAST(:message_ids AS varchar[]), CAST(:sequences AS integer[]),
                CAST(:connection_ids AS varchar[]), CAST(:smsc_ids AS varchar[]),
                CAST(:statuses AS integer[]))
        AS u(message_id, sequence, connection_id, smsc_message_id, submit_status)
    """
)
# (message id, connection id, report timeout seconds, parts, data coding)
Submitted = tuple[str, str, int, int, int]


def _store_first_submits(
    session: Session, segment_rows: list[dict[str, Any]], submitted: list[Submitted], now: datetime
) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _PG_INSERT_SEGMENTS,
            {
                "message_ids": [row["message_id"] for row in segment_rows],
                "sequences": [row["sequence"] for row in segment_rows],
                "connection_ids": [row["connection_id"] for row in segment_rows],
                "smsc_ids": [row["smsc_message_id"] for row in segment_rows],
                "statuses": [row["submit_status"] for row in segment_rows],
            },
        )
    else:
        session.execute(insert(_table(SmsSegment)), segment_rows)
    # Only a queued message becomes submitted; one finished meanwhile (as in the general path)
    # keeps its state, and its claim no longer matters.
    update_rows(
        session,
        _table(SmsMessage),
        [
            {
                "id": message_id,
                "connection_id": connection_id,
                "dlr_deadline": now + timedelta(seconds=timeout),
                "segment_count": total,
                "data_coding": coding,
            }
            for message_id, connection_id, timeout, total, coding in submitted
        ],
        where={"state": "queued"},
        constants={"state": "submitted", "in_doubt": False, "claimed_until": None, "submitted_at": now},
    )


_CLAIM_COLUMNS = (
    "id",
    "from_number",
    "to_number",
    "text",
    "data_coding",
    "segment_count",
    "concat_reference",
    "tried_connections",
    "error",
    "delivery_report_timeout_seconds",
    "validity_period_seconds",
)


def _claimable(*, by_id: bool = False) -> list[ColumnElement[bool]]:
    """What any claim may take: queued, due (``now``), not under a live claim.

    ``by_id``: for a job's ids, looked up by primary key. Beside ``id = ANY(ids)``, both planners
    took the due index whenever they thought few rows were queued (always, on a table without
    statistics) and read every queued row for each claim: PostgreSQL took 12 ms to claim 80 of
    40,000 queued (bench.sms part b lost a tenth of its rate), a cost that grows with the
    backlog, when speed matters most. ``(state = 'queued') IS TRUE`` (the same, state is never
    NULL) is a condition no index serves, which leaves the primary key as the only way in."""
    m = _table(SmsMessage).c
    now = bindparam("now", type_=m.next_attempt_at.type)
    queued = m.state == "queued"
    return [
        queued.is_(True) if by_id else queued,
        m.next_attempt_at <= now,
        or_(m.claimed_until.is_(None), m.claimed_until < now),
    ]


def _claim_conditions(*, by_id: bool, postgres: bool) -> list[ColumnElement[bool]]:
    """A job's ids (``ids``; a row of a job that is claimed, sent or not yet due is left alone,
    so a duplicate or stale job claims nothing), or what the reconciler takes: retries when due,
    and first attempts whose job has had the grace period to come (it was lost with the broker,
    or never published)."""
    m = _table(SmsMessage).c
    if by_id:
        return [one_of(m.id, "ids", postgres=postgres), *_claimable(by_id=True)]
    grace_before = bindparam("grace_before", type_=m.next_attempt_at.type)
    return [*_claimable(), or_(m.attempts > 0, m.next_attempt_at <= grace_before)]


def _claim_order(*, by_id: bool) -> list[Any]:
    # By id, no order: ordering would make PostgreSQL walk the due index through every queued
    # row rather than look the ids up by primary key.
    return [] if by_id else [_table(SmsMessage).c.next_attempt_at]


def _postgres_claim_statement(*, by_id: bool) -> Any:
    """Claim in one statement (SKIP LOCKED: several SMPP processes share the queue); each row
    with ``attempts`` and ``in_doubt`` as they were before the claim."""
    table = _table(SmsMessage)
    due = (
        select(table.c.id, table.c.attempts, table.c.in_doubt)
        .where(*_claim_conditions(by_id=by_id, postgres=True))
        .order_by(*_claim_order(by_id=by_id))
        .limit(bindparam("room", type_=Integer))
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    return (
        update(table)
        .where(table.c.id == due.c.id)
        .values(
            attempts=table.c.attempts + 1,
            in_doubt=True,
            claimed_until=bindparam("until", type_=table.c.claimed_until.type),
        )
        .returning(*(table.c[name] for name in _CLAIM_COLUMNS), due.c.attempts, due.c.in_doubt)
    )


def _portable_claim_statements(*, by_id: bool) -> tuple[Any, Any]:
    """The claim as a select and an update of what it found (SQLite: the writer holds the
    database's write lock from BEGIN IMMEDIATE, so nothing claims in between)."""
    table = _table(SmsMessage)
    find = (
        select(*(table.c[name] for name in _CLAIM_COLUMNS), table.c.attempts, table.c.in_doubt)
        .where(*_claim_conditions(by_id=by_id, postgres=False))
        .order_by(*_claim_order(by_id=by_id))
        .limit(bindparam("room", type_=Integer))
    )
    take = (
        update(table)
        .where(table.c.id.in_(bindparam("taken", expanding=True)))
        .values(
            attempts=table.c.attempts + 1,
            in_doubt=True,
            claimed_until=bindparam("until", type_=table.c.claimed_until.type),
        )
    )
    return find, take


def _segment_targets_statement(*, postgres: bool) -> Any:
    """Segments of one connection by SMSC message id, with what a receipt needs of their message."""
    s, m = _table(SmsSegment).c, _table(SmsMessage).c
    return (
        select(
            s.smsc_message_id,
            m.id,
            m.state,
            m.segment_count,
            s.sequence,
            m.enable_delivery_report,
            m.resource_id,
            m.from_number,
            m.to_number,
            m.tag,
            m.submitted_at,
        )
        .join_from(_table(SmsSegment), _table(SmsMessage), m.id == s.message_id)
        .where(
            s.connection_id == bindparam("connection_id"),
            one_of(s.smsc_message_id, "smsc_ids", postgres=postgres),
        )
    )


def _claim_rows_postgres(session: Session, by_id: bool, parameters: dict[str, Any]) -> Sequence[Any]:
    # On the session's connection: Core, without the ORM's bulk-update machinery (a tenth of the
    # SMPP process's time when the statement went through Session.execute).
    return session.connection().execute(_POSTGRES_CLAIMS[by_id], parameters).all()


def _claim_rows_portable(
    session: Session, by_id: bool, parameters: dict[str, Any], busy: set[str]
) -> Sequence[Any]:
    find, take = _PORTABLE_CLAIMS[by_id]
    connection = session.connection()
    rows = connection.execute(find, parameters).all()
    taken = [row.id for row in rows if row.id not in busy]
    if taken:
        connection.execute(take, {"taken": taken, "until": parameters["until"]})
    return rows


def _store_claim_details(
    session: Session, doubtful: list[dict[str, Any]], references: list[dict[str, Any]]
) -> None:
    """Count the possible duplicates a claim found; keep the concatenation references it chose."""
    table = _table(SmsMessage)
    if doubtful:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("key"))
            .values(possible_duplicates=table.c.possible_duplicates + bindparam("count")),
            doubtful,
        )
    if references:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("key"))
            .values(concat_reference=bindparam("reference")),
            references,
        )


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# Built once: building a statement and its cache key cost more than running a small claim (with a
# send job of a few ids, a claim every few milliseconds, a tenth of the process's time).
_POSTGRES_CLAIMS = {by_id: _postgres_claim_statement(by_id=by_id) for by_id in (True, False)}
_PORTABLE_CLAIMS = {by_id: _portable_claim_statements(by_id=by_id) for by_id in (True, False)}
_PENDING_RECEIPT_IDS = {
    postgres: select(_table(SmsPendingReceipt).c.smsc_message_id).where(
        _table(SmsPendingReceipt).c.connection_id == bindparam("connection_id"),
        one_of(_table(SmsPendingReceipt).c.smsc_message_id, "smsc_ids", postgres=postgres),
    )
    for postgres in (False, True)
}
_SEGMENT_TARGETS = {postgres: _segment_targets_statement(postgres=postgres) for postgres in (True, False)}


def _plus(number: str) -> str:
    return number if number.startswith("+") else "+" + number


# Work for the writer thread ---------------------------------------------------------------------------


@dataclass
class SubmitBatch:
    message_id: str
    connection_id: str
    results: list[tuple[int, SubmitResult]]
    total: int = 0  # parts the message has in the coding it was sent in
    data_coding: int = 0
    # First claim of the message (no segment rows yet) and its report window: such a batch whose
    # every part was accepted is recorded with two bulk statements instead of the ORM.
    first_attempt: bool = False
    report_timeout_seconds: int = 0


@dataclass
class NoRoute:
    message_id: str
    reason: str
    permanent: bool


@dataclass
class Inbound:
    connection_id: str
    pdu: DeliverSm

    @functools.cached_property
    def receipt(self) -> DeliveryReceipt | None:
        """The delivery receipt it carries (None: not a receipt, or unparseable); parsed once,
        though the bulk path, the prefetch and the general path each look at it."""
        if not self.pdu.is_receipt:
            return None
        network = self.pdu.tlvs.get("network_error_code")
        return parse_delivery_receipt(
            self.pdu.payload,
            receipted_message_id=self.pdu.receipted_message_id,
            message_state=self.pdu.message_state,
            network_error_code=network if isinstance(network, bytes) else None,
        )


@dataclass
class _Work:
    item: SubmitBatch | NoRoute | Inbound
    answer: DeliverAnswer | None = None  # a delivery's: its deliver_sm_resp, sent after the commit
    error: list[BaseException] = field(default_factory=list)


@dataclass
class _JobTicket:
    """A send job handed over by the consumer, done when all its ids went through a claim."""

    ids: list[str]
    waiting: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.waiting = list(self.ids)


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


@dataclass
class BatchCache:
    """Rows one writer transaction needs, loaded with a few queries instead of several per item."""

    messages: dict[str, SmsMessage] = field(default_factory=dict)
    segments: dict[str, dict[int, SmsSegment]] = field(default_factory=dict)
    by_smsc_id: dict[tuple[str, str], SmsSegment] = field(default_factory=dict)
    pending: dict[tuple[str, str], list[SmsPendingReceipt]] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionView:
    id: str
    name: str
    source_ton: int
    source_npi: int
    dest_ton: int
    dest_npi: int
    default_data_coding: str
    resp_id_format: MessageIdFormat = MessageIdFormat.AS_IS
    receipt_id_format: MessageIdFormat = MessageIdFormat.AS_IS


class SmppProcess:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        bind_factory: Callable[[BindConfig], SmppBind] = SmppBind,
    ) -> None:
        self.settings = settings
        self.database = database
        self.bind_factory = bind_factory
        self.binds: dict[str, SmppBind] = {}
        self.connections: dict[str, ConnectionView] = {}
        self.routes: list[tuple[str, list[str]]] = []  # longest prefix first
        self.stop_event = threading.Event()
        self.wakeup = threading.Event()  # set when claimed work finishes (room for more) or on stop
        self.work: queue.Queue[_Work] = queue.Queue()
        self.references = ReferenceAllocator(
            ConcatenationMode.UDH_8BIT_REFERENCE,
            start=random.randrange(256),  # noqa: S311 - not a secret
        )
        self.keywords = KeywordSets.create(
            settings.sms_optout_keywords, settings.sms_optin_keywords, settings.sms_help_keywords
        )
        self.reassembler = Reassembler(timeout_seconds=settings.sms_reassembly_timeout_seconds)
        self.in_flight: set[str] = set()
        self.in_flight_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._is_postgres = database.engine.dialect.name == "postgresql"
        # Send jobs from the broker, waiting to be claimed by id (see gateway/sms/jobs.py).
        self.job_tickets: collections.deque[_JobTicket] = collections.deque()
        self.job_lock = threading.Lock()
        self.job_consumer: SendJobConsumer | None = None
        self.next_reconcile = 0.0

    # lifecycle ----------------------------------------------------------------------------------

    def run(self) -> None:
        restored = self.restore_parts()
        if restored:
            log.info("restored %d parts of inbound concatenated messages", restored)
        self._writer = threading.Thread(target=self._write_loop, name="sms-writer", daemon=True)
        self._writer.start()
        self.start_job_consumer()
        next_reload = 0.0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= next_reload:
                    self.reload()
                    next_reload = now + CONFIG_RELOAD_SECONDS
                # Cleared before claiming, so a job or a finished batch arriving while we claim
                # is not forgotten: the wait below then returns at once.
                self.wakeup.clear()
                try:
                    claimed = self.claim_and_submit()
                except Exception:
                    # the database away, most likely: claims expire, nothing is lost; try again
                    log.exception("claiming failed")
                    self.stop_event.wait(1.0)
                    continue
                if claimed == 0:
                    # until a job comes, a batch finishes (room again) or the reconciler is due;
                    # never 0, or a process with no room would spin
                    self.wakeup.wait(max(0.05, self.next_reconcile - time.monotonic()))
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()
        self.wakeup.set()

    def start_job_consumer(self) -> None:
        from gateway.core.celery_app import create_celery

        self.job_consumer = SendJobConsumer(
            create_celery(self.settings), self.on_jobs, queue=self.settings.sms_job_queue
        )
        self.job_consumer.start()

    def on_jobs(self, message_ids: list[str]) -> bool:
        """The job consumer's callback: True once every id was claimed or found not claimable
        (the job is then acknowledged), False if the process stops first (the job goes back)."""
        ticket = _JobTicket(list(message_ids))
        with self.job_lock:
            self.job_tickets.append(ticket)
        self.wakeup.set()
        while not ticket.done.wait(0.2):
            if self.stop_event.is_set():
                return False
        return True

    def shutdown(self) -> None:
        self.stop_event.set()  # also when run() ends on an error: a waiting job must give up
        if self.job_consumer is not None:
            self.job_consumer.stop()  # no new jobs; one in progress is given back to the queue
        for bind in list(self.binds.values()):
            bind.stop()  # drains the window: outcomes still reach the writer
        self.binds.clear()
        self.work.put(_Work(NoRoute("", "", False)))  # wake the writer
        if self._writer is not None:
            self._writer.join(timeout=10)

    # configuration ------------------------------------------------------------------------------

    def reload(self) -> None:
        with self.database.read_session() as session:
            rows = list(session.scalars(select(SmppConnection).where(SmppConnection.enabled.is_(True))))
            route_rows = list(session.scalars(select(SmppRoute).order_by(SmppRoute.priority)))
        wanted = {row.id: row for row in rows}
        for connection_id in list(self.binds):
            if connection_id not in wanted:
                self.binds.pop(connection_id).stop()
                self.connections.pop(connection_id, None)
        for connection_id, row in wanted.items():
            self.connections[connection_id] = ConnectionView(
                row.id,
                row.name,
                row.source_ton,
                row.source_npi,
                row.dest_ton,
                row.dest_npi,
                row.default_data_coding,
                MessageIdFormat(row.resp_id_format),
                MessageIdFormat(row.receipt_id_format),
            )
            if connection_id not in self.binds:
                bind = self.bind_factory(self.bind_config(row))
                bind.on_deliver_deferred(self._deliver_callback(connection_id))
                bind.start()
                self.binds[connection_id] = bind
                log.info("smpp connection %s started (%s:%s)", row.name, row.host, row.port)
        by_prefix: dict[str, list[str]] = {}
        for route in route_rows:
            if route.connection_id in wanted:
                by_prefix.setdefault(route.prefix, []).append(route.connection_id)
        self.routes = sorted(by_prefix.items(), key=lambda item: -len(item[0]))

    def bind_config(self, row: SmppConnection) -> BindConfig:
        import ssl

        lease = self.settings.sms_claim_lease_seconds
        return BindConfig(
            name=row.name,
            host=row.host,
            port=row.port,
            system_id=row.system_id,
            password=row.password,
            system_type=row.system_type,
            mode=BindMode(row.bind_mode),
            tls=ssl.create_default_context() if row.tls else None,
            source_ton=row.source_ton,
            source_npi=row.source_npi,
            dest_ton=row.dest_ton,
            dest_npi=row.dest_npi,
            window_size=row.window_size,
            max_submits_per_second=row.max_submits_per_second,
            enquire_link_interval=row.enquire_link_interval,
            reconnect_backoff_initial=row.reconnect_backoff_initial,
            reconnect_backoff_max=row.reconnect_backoff_max,
            # Every outcome must be known well before the claim's lease ends.
            response_timeout=min(10.0, lease / 4),
            queue_timeout=lease / 3,
            ack_after_callbacks=True,
        )

    def route_for(self, destination: str) -> list[str]:
        for prefix, connection_ids in self.routes:
            if destination.startswith(prefix):
                return connection_ids
        return []

    # claiming and submitting --------------------------------------------------------------------

    def _bound(self) -> bool:
        return any(bind.state is BindState.BOUND for bind in self.binds.values())

    def claim_and_submit(self) -> int:
        """Claim and submit what is ready: the messages of send jobs first, then (when its
        interval is up) what the reconciler finds. Returns how many were claimed."""
        # Hold a few windows' worth at a time: what a process holds but has not written yet is in
        # doubt after a crash (counted as possible duplicates), so holding little keeps that count
        # close to the truth; holding more keeps the binds busy while the writer commits.
        capacity = self.settings.sms_claim_windows * sum(
            b.config.window_size for b in self.binds.values() if b.state is BindState.BOUND
        )
        with self.in_flight_lock:
            room = min(self.settings.sms_claim_batch, capacity) - len(self.in_flight)
        if room <= 0:
            return 0
        claimed = 0
        taken, tickets = self._take_job_ids(room)
        if taken:
            try:
                claimed = self._claim(room, taken)
            except Exception:
                self._give_back_job_ids(taken, tickets)  # claimed on the next turn
                raise
            self._finish_tickets(tickets)
            room -= claimed
        if room > 0 and time.monotonic() >= self.next_reconcile:
            reconciled = self._claim(room, None)
            claimed += reconciled
            # A full batch means a backlog (jobs lost with the broker, retries after an outage):
            # come back at once rather than after the interval.
            interval = 0.0 if reconciled >= room else self.settings.sms_reconcile_interval_seconds
            self.next_reconcile = time.monotonic() + interval
        return claimed

    def _take_job_ids(self, room: int) -> tuple[list[str], list[_JobTicket]]:
        """Up to ``room`` ids of waiting jobs, oldest first, and the tickets they came from."""
        taken: list[str] = []
        tickets: list[_JobTicket] = []
        with self.job_lock:
            for ticket in self.job_tickets:
                if len(taken) >= room:
                    break
                take = ticket.waiting[: room - len(taken)]
                del ticket.waiting[: len(take)]
                taken += take
                tickets.append(ticket)
        return taken, tickets

    def _give_back_job_ids(self, taken: list[str], tickets: list[_JobTicket]) -> None:
        with self.job_lock:
            for ticket in reversed(tickets):
                ticket.waiting[:0] = [i for i in taken if i in ticket.ids]

    def _finish_tickets(self, tickets: list[_JobTicket]) -> None:
        with self.job_lock:
            for ticket in tickets:
                if not ticket.waiting:
                    ticket.done.set()
                    self.job_tickets.remove(ticket)

    def _claim(self, room: int, message_ids: list[str] | None) -> int:
        """Claim (one transaction) and submit up to ``room`` queued, due messages not under a
        live claim: those of ``message_ids``, or, with None, what the reconciler is to take."""
        now = utcnow()
        lease = timedelta(seconds=self.settings.sms_claim_lease_seconds)
        with self.in_flight_lock:
            busy = set(self.in_flight)
        jobs: list[tuple[Claimed, set[int]]] = []
        by_id = message_ids is not None
        parameters: dict[str, Any] = {"now": now, "until": now + lease, "room": room}
        if message_ids is not None:
            parameters["ids"] = message_ids
        else:
            parameters["grace_before"] = now - timedelta(seconds=self.settings.sms_job_grace_seconds)
        with self.database.session() as session:
            claimed_rows = (
                _claim_rows_postgres(session, by_id, parameters)
                if self._is_postgres
                else _claim_rows_portable(session, by_id, parameters, busy)
            )
            # A row this process still holds (its lease ran out in flight) is not submitted twice.
            rows = [row for row in claimed_rows if row.id not in busy]
            if not rows:
                return 0
            if message_ids is None:
                RECONCILED.inc(sum(1 for row in rows if row.attempts == 0))
            retried = [row.id for row in rows if row.attempts > 0]
            accepted: dict[str, set[int]] = {}
            if retried:
                for message_id, sequence in session.execute(
                    select(SmsSegment.message_id, SmsSegment.sequence).where(
                        SmsSegment.message_id.in_(retried), SmsSegment.submit_state == "accepted"
                    )
                ):
                    accepted.setdefault(message_id, set()).add(sequence)
            doubtful: list[dict[str, Any]] = []
            references: list[dict[str, Any]] = []
            for row in rows:
                done = accepted.get(row.id, set())
                reference = row.concat_reference
                if row.in_doubt:
                    count = row.segment_count - len(done)
                    doubtful.append({"key": row.id, "count": count})
                    POSSIBLE_DUPLICATES.inc(count)
                if row.attempts == 0 and row.segment_count > 1:
                    reference = self.references.allocate(row.to_number)
                    references.append({"key": row.id, "reference": reference})
                claimed = Claimed(
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
                )
                jobs.append((claimed, done))
            _store_claim_details(session, doubtful, references)
        with self.in_flight_lock:
            self.in_flight.update(claimed.id for claimed, _ in jobs)
        for claimed, done in jobs:
            try:
                self._submit(claimed, done)
            except Exception as exc:  # a message the codecs or the bind refuse: fail it, go on
                log.exception("message %s cannot be submitted", claimed.id)
                self.work.put(_Work(NoRoute(claimed.id, f"The message cannot be submitted: {exc}", True)))
        return len(jobs)

    def _pick(self, message: Claimed) -> tuple[str | None, str]:
        candidates = self.route_for(message.to_number)
        if not candidates:
            return None, "no SMPP route"
        tried = set(filter(None, message.tried_connections.split(",")))
        remaining = [c for c in candidates if c not in tried]
        if not remaining:
            return None, "rejected"
        for connection_id in remaining:
            bind = self.binds.get(connection_id)
            if bind is not None and bind.state is BindState.BOUND:
                return connection_id, ""
        return None, "down"

    def _submit(self, message: Claimed, done: set[int]) -> None:
        connection_id, why = self._pick(message)
        if connection_id is None:
            if why == "no SMPP route":
                reason = f"No SMPP route for destination {message.to_number}."
            elif why == "rejected":
                reason = message.error or "Every SMPP connection of the route rejected the message."
            else:
                reason = "No SMPP connection of the route is bound."
            self.work.put(_Work(NoRoute(message.id, reason, permanent=why != "down")))
            return
        view = self.connections[connection_id]
        coding = DataCoding(message.data_coding)
        if view.default_data_coding == "ucs2" and not done:
            coding = DataCoding.UCS2  # this connection's SMSC wants UCS-2 whatever the text
        segmented = segment_message(message.text, reference=message.concat_reference, data_coding=coding)
        bind = self.binds[connection_id]
        period = message.validity_period_seconds
        validity = relative_validity_period(period) if period else ""
        futures: list[tuple[int, Future[SubmitResult]]] = []
        for segment in segmented.segments:
            if segment.sequence in done:
                continue
            tlvs: dict[str, int | bytes | str] = {}
            if segment.sar is not None:
                tlvs = {
                    "sar_msg_ref_num": segment.sar.msg_ref_num,
                    "sar_total_segments": segment.sar.total_segments,
                    "sar_segment_seqnum": segment.sar.segment_seqnum,
                }
            request = SubmitRequest(
                source=message.from_number.lstrip("+"),
                destination=message.to_number.lstrip("+"),
                short_message=segment.short_message,
                data_coding=int(segment.data_coding),
                esm_class=segment.esm_class_flags,
                registered_delivery=1,
                tlvs=tlvs,
                source_ton=view.source_ton,
                source_npi=view.source_npi,
                dest_ton=view.dest_ton,
                dest_npi=view.dest_npi,
                validity_period=validity,
            )
            futures.append((segment.sequence, bind.submit(request)))
        batch = SubmitBatch(
            message.id,
            connection_id,
            [],
            len(segmented.segments),
            int(segmented.data_coding),
            first_attempt=message.first_attempt and not done,
            report_timeout_seconds=message.report_timeout_seconds,
        )
        remaining = [len(futures)]
        lock = threading.Lock()

        def finished(sequence: int, future: Future[SubmitResult]) -> None:
            try:
                result = future.result()
            except Exception as exc:
                result = SubmitResult(SubmitOutcome.UNKNOWN, detail=str(exc))
            with lock:
                batch.results.append((sequence, result))
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self.work.put(_Work(batch))

        if not futures:
            self.work.put(_Work(batch))
            return
        for sequence, future in futures:
            future.add_done_callback(functools.partial(finished, sequence))

    # receipts and MO ----------------------------------------------------------------------------

    def _deliver_callback(self, connection_id: str) -> DeferredDeliverCallback:
        def callback(pdu: DeliverSm, answer: DeliverAnswer) -> None:
            # answered by the writer once the batch holding it has committed
            self.work.put(_Work(Inbound(connection_id, pdu), answer))

        return callback

    # the writer ---------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        next_sweep = 0.0
        while True:
            try:
                first = self.work.get(timeout=SWEEP_SECONDS)
            except queue.Empty:
                first = None
            if first is not None:
                batch = [first]
                self._gather(batch)
                self._write(batch)
            if time.monotonic() >= next_sweep:
                try:
                    self.sweep()
                except Exception:
                    log.exception("sweep failed")
                next_sweep = time.monotonic() + SWEEP_SECONDS
            if self.stop_event.is_set() and not self.binds and self.work.empty():
                return

    def _gather(self, batch: list[_Work]) -> None:
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

    def _write(self, batch: Sequence[_Work]) -> None:
        try:
            with self.database.session() as session:
                rest = self._record_first_submits(session, batch)
                rest = self._record_final_receipts(session, rest)
                cache = self._prefetch(session, rest)
                for work in rest:
                    self._apply(session, work.item, cache)
        except Exception as exc:
            log.exception("writing a batch of %d failed; applying one by one", len(batch))
            for work in batch:
                try:
                    with self.database.session() as session:
                        self._apply(session, work.item, self._prefetch(session, [work]))
                except Exception as single:
                    log.exception("writing %s failed", type(work.item).__name__)
                    work.error.append(single)
            del exc
        finally:
            for work in batch:
                if isinstance(work.item, SubmitBatch | NoRoute):
                    with self.in_flight_lock:
                        self.in_flight.discard(work.item.message_id)
                    self.wakeup.set()
                if work.answer is not None:
                    # the SMSC resends what was not persisted
                    work.answer(ESME_RX_T_APPN if work.error else ESME_ROK)

    def _record_first_submits(self, session: Session, batch: Sequence[_Work]) -> list[_Work]:
        """Record, in bulk, first submits whose every part the SMSC accepted; return the rest.

        This is nearly every outcome in steady state, and the ORM's unit of work costs several
        times what these executemany statements do. It runs before the other items of the
        batch, so a receipt later in the batch (or earlier: a receipt before its resp) finds its
        segment in the same transaction. A submit that matches a receipt stored earlier as
        pending takes the general path, which applies that receipt.
        """
        candidates: dict[str, SubmitBatch] = {}
        rest: list[_Work] = []
        for work in batch:
            if isinstance(work.item, SubmitBatch) and self._wholly_accepted_first_submit(work.item):
                candidates[work.item.message_id] = work.item
            else:
                rest.append(work)
        if not candidates:
            return rest
        segment_rows: list[dict[str, Any]] = []
        for item in candidates.values():
            for sequence, result in item.results:
                assert result.message_id is not None
                segment_rows.append(
                    {
                        "message_id": item.message_id,
                        "sequence": sequence,
                        "connection_id": item.connection_id,
                        "smsc_message_id": self._canonical(
                            item.connection_id, result.message_id, receipt=False
                        ),
                        "submit_state": "accepted",
                        "submit_status": result.status,
                    }
                )
        for message_id in self._with_pending_receipts(session, segment_rows):
            rest.append(_Work(candidates.pop(message_id)))
        segment_rows = [row for row in segment_rows if row["message_id"] in candidates]
        if not candidates:
            return rest
        submitted = [
            (item.message_id, item.connection_id, item.report_timeout_seconds, item.total, item.data_coding)
            for item in candidates.values()
        ]
        _store_first_submits(session, segment_rows, submitted, utcnow())
        return rest

    def _record_final_receipts(self, session: Session, batch: list[_Work]) -> list[_Work]:
        """Record, in bulk, final receipts that finish a one-part message; return the rest.

        The other common case of steady state (after first submits). Anything else (a part of a
        longer message, an intermediate state, a receipt with no stored segment yet, two
        receipts for one id in this batch) takes the general path, after these.
        """
        keyed: list[tuple[_Work, tuple[str, str], DeliveryReceipt]] = []
        seen: dict[tuple[str, str], int] = {}
        rest: list[_Work] = []
        for work in batch:
            item = work.item
            receipt = item.receipt if isinstance(item, Inbound) else None
            if receipt is None or receipt.message_id is None or receipt.state is None:
                rest.append(work)
                continue
            assert isinstance(item, Inbound)
            key = (item.connection_id, self._canonical(item.connection_id, receipt.message_id, receipt=True))
            seen[key] = seen.get(key, 0) + 1
            keyed.append((work, key, receipt))
        candidates = [
            entry
            for entry in keyed
            if seen[entry[1]] == 1
            and entry[2].state is not None
            and acs_delivery_status(entry[2].state) is not None
        ]
        targets = self._one_part_submitted(session, {key for _, key, _ in candidates})
        now = utcnow()
        segment_rows: list[dict[str, Any]] = []
        message_rows: list[dict[str, Any]] = []
        events: dict[str, NewEvent] = {}
        for work, key, receipt in keyed:
            target = targets.get(key)
            if target is None or seen[key] != 1:
                rest.append(work)
                continue
            assert receipt.state is not None
            aggregate = aggregate_segment_states(
                [
                    DeliveryReceipt(
                        message_id=key[1],
                        state=receipt.state,
                        error=receipt.error,
                        network_error=None,  # as the general path, which reads it back from the row
                        submit_date=None,
                        done_date=None,
                        submitted=None,
                        delivered=None,
                        text=None,
                    )
                ]
            )
            assert aggregate.status is not None
            status = aggregate.status.value
            segment_rows.append(
                {"message_id": target.id, "receipt_state": int(receipt.state), "receipt_error": receipt.error}
            )
            message_rows.append(
                {
                    "id": target.id,
                    "state": "delivered" if status == "Delivered" else "failed",
                    "delivery_status": status,
                    "delivery_status_details": aggregate.details,
                    "segments_succeeded": aggregate.segments_succeeded,
                    "segments_failed": aggregate.segments_failed,
                }
            )
            if target.enable_delivery_report:
                events[target.id] = NewEvent(
                    resource_id=target.resource_id,
                    event_type=builder.SMS_DELIVERY_REPORT_RECEIVED,
                    subject=builder.phone_subject(target.to_number),
                    data=report_of(
                        target.id,
                        target.from_number,
                        target.to_number,
                        status,
                        aggregate.details,
                        now,
                        target.submitted_at,
                        aggregate.segments_succeeded,
                        aggregate.segments_failed,
                        target.tag,
                    ),
                    event_time=now,
                    event_id=target.id,  # as ACS: the report's event id is the message id
                )
        if message_rows:
            update_rows(
                session,
                _table(SmsSegment),
                segment_rows,
                key="message_id",
                where={"sequence": 1},
                constants={"receipt_at": now},
            )
            # Another SMPP process may have finished one meanwhile: report only what this one did.
            finished = update_rows(
                session,
                _table(SmsMessage),
                message_rows,
                where={"state": "submitted"},
                constants={"finished_at": now, "report_received_at": now, "claimed_until": None},
            )
            publish_many(session, [event for message_id, event in events.items() if message_id in finished])
        return rest

    def _one_part_submitted(self, session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        """The submitted one-part messages whose only segment has these (connection, SMSC id) keys."""
        if not keys:
            return {}
        by_connection: dict[str, list[str]] = {}
        for connection_id, smsc_id in keys:
            by_connection.setdefault(connection_id, []).append(smsc_id)
        statement = _SEGMENT_TARGETS[self._is_postgres]
        connection = session.connection()
        found: dict[tuple[str, str], list[Any]] = {}
        for connection_id, smsc_ids in by_connection.items():
            for row in connection.execute(statement, {"connection_id": connection_id, "smsc_ids": smsc_ids}):
                found.setdefault((connection_id, row.smsc_message_id), []).append(row)
        return {
            key: rows[0]
            for key, rows in found.items()
            if len(rows) == 1
            and rows[0].state == "submitted"
            and rows[0].segment_count == 1
            and rows[0].sequence == 1
        }

    @staticmethod
    def _wholly_accepted_first_submit(item: SubmitBatch) -> bool:
        return (
            item.first_attempt
            and item.total > 0
            and len(item.results) == item.total
            and all(r.outcome is SubmitOutcome.ACCEPTED and r.message_id is not None for _, r in item.results)
        )

    @staticmethod
    def _with_pending_receipts(session: Session, segment_rows: list[dict[str, Any]]) -> set[str]:
        """Messages of these new segments for which a receipt is already stored as pending."""
        by_connection: dict[str, dict[str, str]] = {}
        for row in segment_rows:
            by_connection.setdefault(row["connection_id"], {})[row["smsc_message_id"]] = row["message_id"]
        statement = _PENDING_RECEIPT_IDS[session.get_bind().dialect.name == "postgresql"]
        connection = session.connection()
        found: set[str] = set()
        for connection_id, message_of in by_connection.items():
            for (smsc_id,) in connection.execute(
                statement, {"connection_id": connection_id, "smsc_ids": list(message_of)}
            ):
                found.add(message_of[smsc_id])
        return found

    def _prefetch(self, session: Session, batch: Sequence[_Work]) -> BatchCache:  # noqa: PLR0912
        cache = BatchCache()
        message_ids = {w.item.message_id for w in batch if isinstance(w.item, SubmitBatch)}
        new_ids: dict[str, set[str]] = {}
        receipt_ids: dict[str, set[str]] = {}
        for work in batch:
            item = work.item
            if isinstance(item, SubmitBatch):
                for _, result in item.results:
                    if result.message_id is not None:
                        new_ids.setdefault(item.connection_id, set()).add(
                            canonical_message_id(result.message_id)
                        )
            elif isinstance(item, Inbound) and item.pdu.is_receipt:
                receipt = item.receipt
                if receipt is not None and receipt.message_id is not None:
                    receipt_ids.setdefault(item.connection_id, set()).add(
                        canonical_message_id(receipt.message_id)
                    )
        for connection_id, ids in receipt_ids.items():
            for segment in session.scalars(
                select(SmsSegment).where(
                    SmsSegment.connection_id == connection_id, SmsSegment.smsc_message_id.in_(ids)
                )
            ):
                message_ids.add(segment.message_id)
        for connection_id, ids in new_ids.items():
            for receipt_row in session.scalars(
                select(SmsPendingReceipt).where(
                    SmsPendingReceipt.connection_id == connection_id,
                    SmsPendingReceipt.smsc_message_id.in_(ids),
                )
            ):
                key = (receipt_row.connection_id, receipt_row.smsc_message_id)
                cache.pending.setdefault(key, []).append(receipt_row)
        if message_ids:
            for message in session.scalars(select(SmsMessage).where(SmsMessage.id.in_(message_ids))):
                cache.messages[message.id] = message
                cache.segments[message.id] = {}
            for segment in session.scalars(select(SmsSegment).where(SmsSegment.message_id.in_(message_ids))):
                cache.segments[segment.message_id][segment.sequence] = segment
                if segment.connection_id and segment.smsc_message_id:
                    cache.by_smsc_id[(segment.connection_id, segment.smsc_message_id)] = segment
        return cache

    def _apply(self, session: Session, item: SubmitBatch | NoRoute | Inbound, cache: BatchCache) -> None:
        if isinstance(item, SubmitBatch):
            self.record_submits(session, item, cache)
        elif isinstance(item, NoRoute):
            if item.message_id:
                self.record_no_route(session, item)
        elif item.pdu.is_receipt:
            self.record_receipt(session, item, cache)
        else:
            self.record_mo(session, item.connection_id, item.pdu)

    def _retry_at(self, message: SmsMessage, now: datetime) -> datetime:
        delay = backoff_delay(
            max(1, message.attempts),
            base_seconds=self.settings.sms_retry_base_seconds,
            cap_seconds=self.settings.sms_retry_max_seconds,
            jitter=random.random() * 0.2,  # noqa: S311 - spreading retries, not a secret
        )
        return now + timedelta(seconds=delay)

    def record_no_route(self, session: Session, item: NoRoute) -> None:
        message = session.get(SmsMessage, item.message_id)
        if message is None or message.state != "queued":
            return
        now = utcnow()
        message.claimed_until = None
        message.in_doubt = False  # nothing was written
        if item.permanent:
            self.finish_failed(session, message, item.reason, now)
        else:
            message.next_attempt_at = self._retry_at(message, now)

    def record_submits(self, session: Session, batch: SubmitBatch, cache: BatchCache) -> None:  # noqa: PLR0912, PLR0915
        message = cache.messages.get(batch.message_id)
        if message is None:
            return
        now = utcnow()
        segments = cache.segments.setdefault(message.id, {})
        if batch.total and not any(s.submit_state == "accepted" for s in segments.values()):
            message.segment_count = batch.total  # a connection may have re-coded it (UCS-2 only)
            message.data_coding = batch.data_coding
        unknown = False
        failed: SubmitResult | None = None
        for sequence, result in batch.results:
            segment = segments.get(sequence)
            if segment is None:
                segment = SmsSegment(message_id=message.id, sequence=sequence, submit_state="pending")
                session.add(segment)
                segments[sequence] = segment
            if segment.submit_state == "accepted":
                continue
            segment.submit_status = result.status
            if result.outcome is SubmitOutcome.ACCEPTED and result.message_id is not None:
                segment.connection_id = batch.connection_id
                segment.smsc_message_id = self._canonical(
                    batch.connection_id, result.message_id, receipt=False
                )
                segment.submit_state = "accepted"
                key = (batch.connection_id, segment.smsc_message_id)
                cache.by_smsc_id[key] = segment
                for early in cache.pending.pop(key, []):
                    segment.receipt_state = early.state
                    segment.receipt_error = early.error
                    segment.receipt_at = early.received_at
                    if sa_inspect(early).persistent:
                        session.delete(early)
                    else:
                        session.expunge(early)  # came earlier in this same batch
            elif result.outcome is SubmitOutcome.FAILED:
                failed = result
            elif result.outcome is SubmitOutcome.UNKNOWN:
                unknown = True
        message.claimed_until = None
        message.in_doubt = unknown
        if message.state != "queued":
            return  # finished meanwhile (e.g. a receipt that came before the resp)
        accepted = sum(1 for s in segments.values() if s.submit_state == "accepted")
        if accepted >= message.segment_count:
            message.state = "submitted"
            message.in_doubt = False
            message.connection_id = batch.connection_id
            message.submitted_at = now
            message.dlr_deadline = now + timedelta(seconds=message.delivery_report_timeout_seconds)
            self._maybe_finish(session, message, list(segments.values()), now)
            return
        if failed is not None:
            status = failed.status if failed.status is not None else 0
            message.error = f"The SMSC rejected the message: {describe_command_status(status)}."
            tried = [c for c in message.tried_connections.split(",") if c]
            tried.append(batch.connection_id)
            message.tried_connections = ",".join(tried)
            others = [c for c in self.route_for(message.to_number) if c not in tried]
            if others:
                message.next_attempt_at = now  # fail over to the next connection of the route
                return
            self.finish_failed(session, message, message.error, now)
            return
        message.next_attempt_at = self._retry_at(message, now)

    def _canonical(self, connection_id: str, message_id: str, *, receipt: bool) -> str:
        view = self.connections.get(connection_id)
        if view is None:
            return canonical_message_id(message_id)
        return canonical_message_id(message_id, view.receipt_id_format if receipt else view.resp_id_format)

    def record_receipt(self, session: Session, inbound: Inbound, cache: BatchCache) -> None:
        connection_id, receipt = inbound.connection_id, inbound.receipt
        if receipt is None or receipt.message_id is None or receipt.state is None:
            log.warning("unparseable receipt on %s: %r", connection_id, inbound.pdu.payload[:160])
            return
        smsc_id = self._canonical(connection_id, receipt.message_id, receipt=True)
        now = utcnow()
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
        if message is None or message.state != "submitted":
            return
        self._maybe_finish(session, message, list(cache.segments.get(message.id, {}).values()), now)

    def _outcomes(self, message: SmsMessage, segments: Iterable[SmsSegment]) -> list[Any]:
        by_sequence = {s.sequence: s for s in segments}
        outcomes: list[Any] = []
        for sequence in range(1, message.segment_count + 1):
            segment = by_sequence.get(sequence)
            if segment is None or segment.receipt_state is None:
                outcomes.append(None)
                continue
            state = MessageState(segment.receipt_state)
            outcomes.append(
                DeliveryReceipt(
                    message_id=segment.smsc_message_id,
                    state=state,
                    error=segment.receipt_error,
                    network_error=None,
                    submit_date=None,
                    done_date=None,
                    submitted=None,
                    delivered=None,
                    text=None,
                )
            )
        return outcomes

    def _maybe_finish(
        self,
        session: Session,
        message: SmsMessage,
        segments: list[SmsSegment],
        now: datetime,
        *,
        timed_out: bool = False,
    ) -> None:
        outcomes = self._outcomes(message, segments)
        if not timed_out and any(
            o is None or o.state is None or acs_delivery_status(o.state) is None for o in outcomes
        ):
            return
        aggregate = aggregate_segment_states(
            [o if o is None or acs_delivery_status(o.state) is not None else None for o in outcomes],
            timed_out=timed_out,
        )
        assert aggregate.status is not None
        message.state = (
            "expired" if timed_out else ("delivered" if aggregate.status.value == "Delivered" else "failed")
        )
        self._report(
            session,
            message,
            aggregate.status.value,
            aggregate.details,
            aggregate.segments_succeeded,
            aggregate.segments_failed,
            now,
        )

    def finish_failed(self, session: Session, message: SmsMessage, reason: str, now: datetime) -> None:
        message.state = "failed"
        message.error = reason
        self._report(session, message, "Failed", reason, 0, message.segment_count, now)

    def _report(
        self,
        session: Session,
        message: SmsMessage,
        status: str,
        details: str,
        succeeded: int,
        failed: int,
        now: datetime,
    ) -> None:
        message.finished_at = now
        message.claimed_until = None
        message.delivery_status = status
        message.delivery_status_details = details
        message.report_received_at = now
        message.segments_succeeded = succeeded
        message.segments_failed = failed
        if message.enable_delivery_report:
            publish(
                session,
                resource_id=message.resource_id,
                event_type=builder.SMS_DELIVERY_REPORT_RECEIVED,
                subject=builder.phone_subject(message.to_number),
                data=report_data(message),
                event_time=now,
                event_id=message.id,  # as ACS: the report's event id is the message id
            )

    def record_mo(self, session: Session, connection_id: str, pdu: DeliverSm) -> None:
        def tlv_int(name: str) -> int | None:
            value = pdu.tlvs.get(name)
            return value if isinstance(value, int) else None

        payload_tlv = pdu.tlvs.get("message_payload")
        part = inbound_part_from_pdu(
            source=pdu.source,
            destination=pdu.destination,
            esm_class=pdu.esm_class,
            data_coding=pdu.data_coding,
            short_message=pdu.short_message,
            message_payload=payload_tlv if isinstance(payload_tlv, bytes) else None,
            sar_msg_ref_num=tlv_int("sar_msg_ref_num"),
            sar_total_segments=tlv_int("sar_total_segments"),
            sar_segment_seqnum=tlv_int("sar_segment_seqnum"),
        )
        result = self.reassembler.add(part, time.monotonic())
        concat = part.concat
        if concat is not None and concat.total > 1:
            set_key = (part.source, part.destination, concat.reference, concat.total)
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
                self._forget_parts(session, set_key)
        if result.outcome is not AddOutcome.COMPLETE or result.message is None:
            return
        message = result.message
        now = utcnow()
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
            segmented = segment_message(reply)
            country = region_of(sender)
            # An automatic reply is a message of the resource: the quotas count it, as they did
            # when they counted stored messages.
            count_sent(session, resource_id, country, now)
            session.add(
                SmsMessage(
                    id=new_message_id(now),
                    resource_id=resource_id,
                    from_number=recipient,
                    to_number=sender,
                    country_code=country,
                    text=reply,
                    segment_count=len(segmented.segments),
                    data_coding=int(segmented.data_coding),
                    delivery_report_timeout_seconds=self.settings.sms_delivery_report_timeout_seconds,
                    state="queued",
                    next_attempt_at=now,
                    created_at=now,
                )
            )

    # timers -------------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Expire messages whose delivery report did not come in time; give up stale MO sets."""
        now = utcnow()
        with self.database.session() as session:
            due_query = (
                select(SmsMessage)
                .where(SmsMessage.state == "submitted", SmsMessage.dlr_deadline < now)
                .limit(1000)
            )
            if self._is_postgres:
                # several SMPP processes sweep; a row one of them holds is its to finish
                due_query = due_query.with_for_update(skip_locked=True)
            due = list(session.scalars(due_query))
            for message in due:
                segments = list(
                    session.scalars(select(SmsSegment).where(SmsSegment.message_id == message.id))
                )
                self._maybe_finish(session, message, segments, now, timed_out=True)
            # Queued too long (no bind came up in the message's whole report window): expire.
            stale_query = (
                select(SmsMessage)
                .where(
                    SmsMessage.state == "queued",
                    SmsMessage.created_at
                    < now - timedelta(seconds=self.settings.sms_delivery_report_timeout_seconds),
                    or_(SmsMessage.claimed_until.is_(None), SmsMessage.claimed_until < now),
                    and_(SmsMessage.in_doubt.is_(False)),
                )
                .limit(1000)
            )
            if self._is_postgres:
                # a claim committed meanwhile makes the row fail the WHERE when re-read under lock
                stale_query = stale_query.with_for_update(skip_locked=True)
            stale = list(session.scalars(stale_query))
            for message in stale:
                if message.created_at + timedelta(seconds=message.delivery_report_timeout_seconds) < now:
                    message.state = "expired"
                    self._report(
                        session,
                        message,
                        "Failed",
                        "Failed: the message could not be submitted to a carrier within "
                        "deliveryReportTimeoutInSeconds.",
                        0,
                        message.segment_count,
                        now,
                    )
            self._apply_stranded_receipts(session, now)
        expired_sets = self.reassembler.expire(time.monotonic())
        if expired_sets:
            with self.database.session() as session:
                for expired in expired_sets:
                    log.warning("inbound SMS parts given up: %s missing %s", expired.key, expired.missing)
                    key = expired.key
                    self._forget_parts(session, (key.source, key.destination, key.reference, key.total))

    def _apply_stranded_receipts(self, session: Session, now: datetime) -> None:
        """Apply receipts kept as pending whose segment has been stored since.

        With several SMPP processes, a receipt can reach one while another is committing the
        submit_sm_resp of the same segment: the first keeps it as pending, and the second looked
        for pending receipts just before that commit. Waiting well past the response timeout
        leaves the usual early receipt to the writer, which applies it with the resp.
        """
        pending, segment = SmsPendingReceipt, SmsSegment
        query = (
            select(pending, segment)
            .join(
                segment,
                and_(
                    segment.connection_id == pending.connection_id,
                    segment.smsc_message_id == pending.smsc_message_id,
                ),
            )
            .where(pending.received_at < now - STRANDED_RECEIPT_AGE)
            .limit(500)
        )
        if self._is_postgres:
            query = query.with_for_update(skip_locked=True, of=pending)
        touched: set[str] = set()
        for early, stored in session.execute(query):
            stored.receipt_state = early.state
            stored.receipt_error = early.error
            stored.receipt_at = early.received_at
            session.delete(early)
            touched.add(stored.message_id)
        for message_id in touched:
            message = session.get(SmsMessage, message_id)
            if message is not None and message.state == "submitted":
                segments = list(
                    session.scalars(select(SmsSegment).where(SmsSegment.message_id == message_id))
                )
                self._maybe_finish(session, message, segments, now)

    @staticmethod
    def _forget_parts(session: Session, set_key: tuple[str, str, int, int]) -> None:
        source, destination, reference, total = set_key
        session.execute(
            delete(SmsInboundPart).where(
                SmsInboundPart.source == source,
                SmsInboundPart.destination == destination,
                SmsInboundPart.reference == reference,
                SmsInboundPart.total == total,
            )
        )

    def restore_parts(self) -> int:
        """Hand the parts a previous run kept back to the reassembler (aged by their receipt time)."""
        with self.database.read_session() as session:
            rows = list(session.scalars(select(SmsInboundPart).order_by(SmsInboundPart.received_at)))
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


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(SmsMessage).where(SmsMessage.state.in_(("queued", "submitted")))
        )
        or 0
    )


def run_smpp(settings: Settings) -> None:
    from gateway.core.migrate import upgrade

    database = Database(settings.effective_database_url)
    upgrade(database.engine)
    if settings.smpp_config_file is not None:
        with database.session() as session:
            connections, routes = apply_config_file(session, settings.smpp_config_file)
        log.info("applied %s: %d connections, %d new routes", settings.smpp_config_file, connections, routes)
    process = SmppProcess(settings, database)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        process.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("trunkline smpp starting")
    process.run()
    database.dispose()
