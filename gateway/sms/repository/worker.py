"""The SMPP worker's SQL: claims, segments, pending receipts, state updates, sweeps, inbound parts.

The hot statements (claims, the bulk writer's lookups) are built once: building a statement and
its cache key cost more than running a small claim. Their plans are held by
tests/gateway/sms/repository/test_worker.py. The worker (sms/worker/) keeps no SQL of its own; what
a row's state becomes is gateway/sms/lifecycle.py's to say, this module only writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from gateway.core.bulk import insert_rows, update_rows
from gateway.core.db import one_of, text_literal, unindexed
from gateway.sms.lifecycle import SegmentSubmitState, SmsState
from gateway.sms.models import (
    SmppConnection,
    SmppRoute,
    SmsInboundPart,
    SmsMessage,
    SmsPendingReceipt,
    SmsSegment,
)

_messages = cast(Table, SmsMessage.__table__)
_segments = cast(Table, SmsSegment.__table__)
_pending = cast(Table, SmsPendingReceipt.__table__)

# Claims ------------------------------------------------------------------------------------------------

CLAIM_COLUMNS = (
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
"""What a claim reads of each message: what submitting it needs (then ``attempts`` and
``in_doubt`` as they were before the claim)."""


def _claimable(*, by_id: bool = False) -> list[ColumnElement[bool]]:
    """What any claim may take: queued, due (``now``), not under a live claim.

    ``by_id``: for a job's ids, looked up by primary key: the state ``unindexed`` leaves the
    primary key as the only way in. Still needed with statistics kept current (issue 15
    checked): a queue table's statistics are stale by nature, since a burst of queued rows
    arrives between two ANALYZEs, and with ``state = 'queued'`` both planners then take the due
    index and read every queued row for each claim, a cost that grows with the backlog
    (tests/gateway/sms/repository/test_worker.py: 5,000 rows queued since the last ANALYZE;
    SQLite, which has no statistics unless someone runs ANALYZE, does so always). With
    statistics that match the table the plain condition is planned by primary key
    (tests/gateway/sms/test_plans.py), but a gateway must not depend on that."""
    m = _messages.c
    now = bindparam("now", type_=m.next_attempt_at.type)
    queued = m.state == SmsState.QUEUED
    return [
        unindexed(queued) if by_id else queued,
        m.next_attempt_at <= now,
        or_(m.claimed_until.is_(None), m.claimed_until < now),
    ]


def _claim_conditions(*, by_id: bool, postgres: bool) -> list[ColumnElement[bool]]:
    """A job's ids (``ids``; a row of a job that is claimed, sent or not yet due is left alone,
    so a duplicate or stale job claims nothing), or what the reconciler takes: retries when due,
    and first attempts whose job has had the grace period to come (it was lost with the broker,
    or never published)."""
    m = _messages.c
    if by_id:
        return [one_of(m.id, "ids", postgres=postgres), *_claimable(by_id=True)]
    grace_before = bindparam("grace_before", type_=m.next_attempt_at.type)
    return [*_claimable(), or_(m.attempts > 0, m.next_attempt_at <= grace_before)]


def _claim_order(*, by_id: bool) -> list[Any]:
    # By id, no order: ordering would make PostgreSQL walk the due index through every queued
    # row rather than look the ids up by primary key.
    return [] if by_id else [_messages.c.next_attempt_at]


def _postgres_claim_statement(*, by_id: bool) -> Any:
    """Claim in one statement (SKIP LOCKED: several SMPP processes share the queue); each row
    with ``attempts`` and ``in_doubt`` as they were before the claim."""
    table = _messages
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
        .returning(*(table.c[name] for name in CLAIM_COLUMNS), due.c.attempts, due.c.in_doubt)
    )


def _portable_claim_statements(*, by_id: bool) -> tuple[Any, Any]:
    """The claim as a select and an update of what it found (SQLite: the writer holds the
    database's write lock from BEGIN IMMEDIATE, so nothing claims in between)."""
    table = _messages
    find = (
        select(*(table.c[name] for name in CLAIM_COLUMNS), table.c.attempts, table.c.in_doubt)
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


# by_id
POSTGRES_CLAIMS = {by_id: _postgres_claim_statement(by_id=by_id) for by_id in (True, False)}
PORTABLE_CLAIMS = {by_id: _portable_claim_statements(by_id=by_id) for by_id in (True, False)}


def claim_rows(
    session: Session, *, postgres: bool, by_id: bool, parameters: dict[str, Any], busy: set[str]
) -> Sequence[Row[Any]]:
    """Claim what ``parameters`` say (``now``, ``until``, ``room``, and ``ids`` or
    ``grace_before``): the rows, with ``attempts`` and ``in_doubt`` as they were. ``busy``: ids
    this process still holds, which the portable claim does not take again."""
    connection = session.connection()
    if postgres:
        # On the session's connection: Core, without the ORM's bulk-update machinery (see
        # docs/performance.md, History).
        return connection.execute(POSTGRES_CLAIMS[by_id], parameters).all()
    find, take = PORTABLE_CLAIMS[by_id]
    rows = connection.execute(find, parameters).all()
    taken = [row.id for row in rows if row.id not in busy]
    if taken:
        connection.execute(take, {"taken": taken, "until": parameters["until"]})
    return rows


def accepted_sequences(session: Session, message_ids: list[str]) -> dict[str, set[int]]:
    """The sequences of the parts of these messages the SMSC has accepted, by message."""
    accepted: dict[str, set[int]] = {}
    if message_ids:
        for message_id, sequence in session.execute(
            select(SmsSegment.message_id, SmsSegment.sequence).where(
                SmsSegment.message_id.in_(message_ids),
                SmsSegment.submit_state == SegmentSubmitState.ACCEPTED,
            )
        ):
            accepted.setdefault(message_id, set()).add(sequence)
    return accepted


def store_claim_details(
    session: Session, doubtful: list[dict[str, Any]], references: list[dict[str, Any]]
) -> None:
    """Count the possible duplicates a claim found (``key``, ``count``); keep the concatenation
    references it chose (``key``, ``reference``)."""
    table = _messages
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


# The bulk writer ----------------------------------------------------------------------------------------

_PENDING_RECEIPT_IDS = {
    postgres: select(_pending.c.smsc_message_id).where(
        _pending.c.connection_id == bindparam("connection_id"),
        one_of(_pending.c.smsc_message_id, "smsc_ids", postgres=postgres),
    )
    for postgres in (False, True)
}


class NewSegment(NamedTuple):
    """A part the SMSC accepted on the first submit of its message."""

    message_id: str
    sequence: int
    connection_id: str
    smsc_message_id: str
    submit_status: int | None


def insert_accepted_segments(session: Session, segments: Sequence[NewSegment]) -> None:
    """One statement for the batch (gateway.core.bulk.insert_rows)."""
    insert_rows(
        session,
        _segments,
        [{**segment._asdict(), "submit_state": SegmentSubmitState.ACCEPTED.value} for segment in segments],
    )


def messages_with_pending_receipts(session: Session, segments: Iterable[NewSegment]) -> set[str]:
    """Messages of these new segments for which a receipt is already stored as pending."""
    by_connection: dict[str, dict[str, str]] = {}
    for segment in segments:
        by_connection.setdefault(segment.connection_id, {})[segment.smsc_message_id] = segment.message_id
    statement = _PENDING_RECEIPT_IDS[session.get_bind().dialect.name == "postgresql"]
    connection = session.connection()
    found: set[str] = set()
    for connection_id, message_of in by_connection.items():
        for (smsc_id,) in connection.execute(
            statement, {"connection_id": connection_id, "smsc_ids": list(message_of)}
        ):
            found.add(message_of[smsc_id])
    return found


def update_messages(
    session: Session, rows: Sequence[Mapping[str, Any]], constants: Mapping[str, Any], *, state: SmsState
) -> set[str]:
    """Set each row's columns, and ``constants``, on its message (``id``) if the message is still
    in ``state``; the ids of the messages updated (another SMPP process may have moved one on)."""
    return update_rows(session, _messages, rows, where={"state": state}, constants=constants)


def record_first_part_receipts(session: Session, rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """Store each row's receipt (``receipt_state``, ``receipt_error``) on its message's (``message_id``)
    only part."""
    update_rows(
        session, _segments, rows, key="message_id", where={"sequence": 1}, constants={"receipt_at": now}
    )


# The general path's reads -------------------------------------------------------------------------------


def segments_by_smsc_ids(session: Session, connection_id: str, smsc_ids: Iterable[str]) -> list[SmsSegment]:
    return list(
        session.scalars(
            select(SmsSegment).where(
                SmsSegment.connection_id == connection_id, SmsSegment.smsc_message_id.in_(smsc_ids)
            )
        )
    )


def pending_receipts(
    session: Session, connection_id: str, smsc_ids: Iterable[str]
) -> list[SmsPendingReceipt]:
    return list(
        session.scalars(
            select(SmsPendingReceipt).where(
                SmsPendingReceipt.connection_id == connection_id,
                SmsPendingReceipt.smsc_message_id.in_(smsc_ids),
            )
        )
    )


def messages_by_ids(session: Session, message_ids: Iterable[str]) -> list[SmsMessage]:
    return list(session.scalars(select(SmsMessage).where(SmsMessage.id.in_(message_ids))))


def segments_of(session: Session, message_ids: Iterable[str]) -> list[SmsSegment]:
    return list(session.scalars(select(SmsSegment).where(SmsSegment.message_id.in_(message_ids))))


def message(session: Session, message_id: str) -> SmsMessage | None:
    return session.get(SmsMessage, message_id)


def forget_pending_receipt(session: Session, receipt: SmsPendingReceipt) -> None:
    """Drop a pending receipt now applied: stored earlier, or added earlier in this transaction."""
    if sa_inspect(receipt).persistent:
        session.delete(receipt)
    else:
        session.expunge(receipt)


# Sweeps ------------------------------------------------------------------------------------------------

SWEEP_BATCH = 1000
STRANDED_BATCH = 500


def reports_overdue(session: Session, now: datetime, *, postgres: bool) -> list[SmsMessage]:
    """Submitted messages whose report window has ended."""
    query = (
        select(SmsMessage)
        .where(SmsMessage.state == text_literal(SmsState.SUBMITTED.value), SmsMessage.dlr_deadline < now)
        .limit(SWEEP_BATCH)
    )
    if postgres:
        # several SMPP processes sweep; a row one of them holds is its to finish
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def queued_since_before(
    session: Session, created_before: datetime, now: datetime, *, postgres: bool
) -> list[SmsMessage]:
    """Queued messages created before ``created_before``, not under a live claim, not in doubt."""
    query = (
        select(SmsMessage)
        .where(
            SmsMessage.state == text_literal(SmsState.QUEUED.value),
            SmsMessage.created_at < created_before,
            or_(SmsMessage.claimed_until.is_(None), SmsMessage.claimed_until < now),
            and_(SmsMessage.in_doubt.is_(False)),
        )
        .limit(SWEEP_BATCH)
    )
    if postgres:
        # a claim committed meanwhile makes the row fail the WHERE when re-read under lock
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def stranded_receipts(
    session: Session, received_before: datetime, *, postgres: bool
) -> list[tuple[SmsPendingReceipt, SmsSegment]]:
    """Pending receipts older than ``received_before`` whose segment has been stored since."""
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
        .where(pending.received_at < received_before)
        .limit(STRANDED_BATCH)
    )
    if postgres:
        query = query.with_for_update(skip_locked=True, of=pending)
    return [(early, stored) for early, stored in session.execute(query)]


# Inbound parts ------------------------------------------------------------------------------------------


def forget_inbound_parts(session: Session, source: str, destination: str, reference: int, total: int) -> None:
    session.execute(
        delete(SmsInboundPart).where(
            SmsInboundPart.source == source,
            SmsInboundPart.destination == destination,
            SmsInboundPart.reference == reference,
            SmsInboundPart.total == total,
        )
    )


def inbound_parts(session: Session) -> list[SmsInboundPart]:
    """Every kept part, oldest first."""
    return list(session.scalars(select(SmsInboundPart).order_by(SmsInboundPart.received_at)))


# Configuration -------------------------------------------------------------------------------------------


def enabled_connections(session: Session) -> list[SmppConnection]:
    return list(session.scalars(select(SmppConnection).where(SmppConnection.enabled.is_(True))))


def routes_by_priority(session: Session) -> list[SmppRoute]:
    return list(session.scalars(select(SmppRoute).order_by(SmppRoute.priority)))


def release_waiting_for_bind(session: Session, now: datetime) -> list[str]:
    """The queued messages waiting for a bind, due now (a bind came up); their ids."""
    m = _messages.c
    ids = list(session.scalars(select(m.id).where(m.state == SmsState.QUEUED, m.waiting_for_bind.is_(True))))
    if ids:
        session.execute(
            update(_messages)
            .where(m.id.in_(ids), m.state == SmsState.QUEUED)
            .values(waiting_for_bind=False, next_attempt_at=now)
        )
    return ids
