"""SQL of reads about stored messages: one message, and the operator's counts."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.sms.models import SmsMessage


def get_message(session: Session, message_id: str) -> SmsMessage | None:
    return session.get(SmsMessage, message_id)


def count_by_state(session: Session) -> dict[str, int]:
    """How many messages are in each state."""
    rows = session.execute(select(SmsMessage.state, func.count()).group_by(SmsMessage.state)).all()
    return {str(state): int(count) for state, count in rows}


def possible_duplicates(session: Session) -> int:
    """The sum of the messages' possible duplicates (segments perhaps sent twice)."""
    return int(session.scalar(select(func.coalesce(func.sum(SmsMessage.possible_duplicates), 0))) or 0)
