"""Opt-outs: the SMS API's ``/sms/optouts:add|remove|check`` and the worker's STOP/START
keywords. A recipient opted out of a sender gets no message from it (``send`` answers 400)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.errors import BadRequest
from gateway.numbers.purchased import owned_number
from gateway.sms.addresses import normalise_number, sender_or_400
from gateway.sms.repository import optouts as repository
from gateway.sms.schemas import OptOutRequest

OPTED_OUT_MESSAGE = "The recipient has opted out of messages from this sender (it replied STOP)."


class OptOutAction(StrEnum):
    """What an opt-out request does (the ``:action`` of its path)."""

    ADD = "add"
    REMOVE = "remove"
    CHECK = "check"


def _optout_sender(session: Session, resource_id: str, raw: str) -> str:
    sender = sender_or_400(raw)
    if owned_number(session, resource_id, sender) is None:
        raise BadRequest(
            f"The From phone number '{raw}' is not a number this resource has purchased.",
            "from",
            "InvalidFromPhoneNumber",
        )
    return sender


def optouts(
    session: Session, resource_id: str, request: OptOutRequest, action: OptOutAction
) -> list[dict[str, Any]]:
    """Add, remove or check each recipient's opt-out of the request's sender; one item per
    recipient."""
    sender = _optout_sender(session, resource_id, request.from_)
    items: list[dict[str, Any]] = []
    for recipient in request.recipients:
        to = normalise_number(recipient.to)
        if to is None:
            items.append(
                {
                    "to": recipient.to,
                    "httpStatusCode": 400,
                    "errorMessage": "Invalid recipient phone number format",
                }
            )
            continue
        existing = repository.find_opt_out(session, sender, to)
        if action == OptOutAction.ADD:
            if existing is None:
                set_opt_out(session, sender, to, opted_out=True)
            items.append({"to": to, "httpStatusCode": 200})
        elif action == OptOutAction.REMOVE:
            if existing is not None:
                set_opt_out(session, sender, to, opted_out=False)
            items.append({"to": to, "httpStatusCode": 200})
        else:
            items.append({"to": to, "httpStatusCode": 200, "isOptedOut": existing is not None})
    return items


def set_opt_out(session: Session, sender: str, recipient: str, *, opted_out: bool) -> None:
    """Opt ``recipient`` out of (or back in to) messages from ``sender``; idempotent."""
    if opted_out:
        if repository.find_opt_out(session, sender, recipient) is None:
            repository.add_opt_out(session, sender, recipient)
    else:
        repository.delete_opt_out(session, sender, recipient)
