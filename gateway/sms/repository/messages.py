"""SQL of reads about stored messages: one message, its parts, the operator's search and counts."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.sms.lifecycle import SmsState
from gateway.sms.models import SmsMessage, SmsSegment


def get_message(session: Session, message_id: str) -> SmsMessage | None:
    return session.get(SmsMessage, message_id)


def count_by_state(session: Session) -> dict[str, int]:
    """How many messages are in each state."""
    rows = session.execute(select(SmsMessage.state, func.count()).group_by(SmsMessage.state)).all()
    return {str(state): int(count) for state, count in rows}


def possible_duplicates(session: Session) -> int:
    """The sum of the messages' possible duplicates (segments perhaps sent twice)."""
    return int(session.scalar(select(func.coalesce(func.sum(SmsMessage.possible_duplicates), 0))) or 0)


def segments_of_message(session: Session, message_id: str) -> list[SmsSegment]:
    """A message's parts, in order."""
    query = select(SmsSegment).where(SmsSegment.message_id == message_id).order_by(SmsSegment.sequence)
    return list(session.scalars(query))


def search_messages(
    session: Session,
    *,
    to_number: str | None = None,
    from_number: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[SmsMessage]:
    """Outgoing messages matching every filter given, newest first."""
    query = select(SmsMessage).order_by(SmsMessage.created_at.desc(), SmsMessage.id).limit(limit)
    if to_number is not None:
        query = query.where(SmsMessage.to_number == to_number)
    if from_number is not None:
        query = query.where(SmsMessage.from_number == from_number)
    if state is not None:
        query = query.where(SmsMessage.state == state)
    if since is not None:
        query = query.where(SmsMessage.created_at >= since)
    return list(session.scalars(query))


class QueuedSummary(NamedTuple):
    """The SMS queue: how many messages wait for a submit, and when the oldest was accepted."""

    queued: int
    oldest_created_at: datetime | None


def queued_summary(session: Session) -> QueuedSummary:
    """Messages in the ``queued`` state and the oldest one's acceptance time."""
    count, oldest = session.execute(
        select(func.count(), func.min(SmsMessage.created_at)).where(SmsMessage.state == SmsState.QUEUED)
    ).one()
    return QueuedSummary(int(count or 0), oldest)


def count_by_state_since(session: Session, since: datetime) -> dict[str, int]:
    """How many of the messages accepted at or after ``since`` are in each state."""
    rows = session.execute(
        select(SmsMessage.state, func.count())
        .where(SmsMessage.created_at >= since)
        .group_by(SmsMessage.state)
    ).all()
    return {str(state): int(count) for state, count in rows}
