"""SQL of the opt-outs (``sms_optouts``): a (sender, recipient) pair the recipient opted out of."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from gateway.sms.models import SmsOptOut


def find_opt_out(session: Session, sender: str, recipient: str) -> SmsOptOut | None:
    return session.get(SmsOptOut, (sender, recipient))


def add_opt_out(session: Session, sender: str, recipient: str) -> None:
    session.add(SmsOptOut(from_number=sender, to_number=recipient))
    session.flush()


def delete_opt_out(session: Session, sender: str, recipient: str) -> None:
    session.execute(
        delete(SmsOptOut).where(SmsOptOut.from_number == sender, SmsOptOut.to_number == recipient)
    )
