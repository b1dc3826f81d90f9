"""A message's whole history for the operator (``trunkline sms show``/``list``,
``GET /admin/sms/messages``): accepted, each part submitted (connection, SMSC id), each receipt,
the final report, and the events published about it with their deliveries to subscriptions.

The rows keep only each step's latest time (a part's submit shares the message's
``submitted_at``; a retried part shows its last outcome); the history is built from them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.errors import BadRequest, NotFound
from gateway.events.history import event_history
from gateway.sms.lifecycle import SmsState
from gateway.sms.models import SmsMessage, SmsSegment
from gateway.sms.repository import connections as connection_repository
from gateway.sms.repository import messages as repository
from sms.receipts import MessageState
from sms.status import command_status_name

MAX_LIST = 1000
_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime) -> datetime:
    """``--since``: a duration back from now (``30m``, ``2h``, ``1d``) or an ISO 8601 time."""
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"The time '{value}' is neither a duration such as 30m, 2h or 1d nor an ISO 8601 time "
            "such as 2026-12-06T18:00:00Z.",
            "since",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=now.tzinfo)


def parse_status(value: str) -> str:
    try:
        return SmsState(value.lower()).value
    except ValueError:
        states = ", ".join(state.value for state in SmsState)
        raise BadRequest(f"The status '{value}' is not one of {states}.", "status") from None


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def summary_json(message: SmsMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "resourceId": message.resource_id,
        "from": message.from_number,
        "to": message.to_number,
        "status": message.state,
        "deliveryStatus": message.delivery_status,
        "segmentCount": message.segment_count,
        "attempts": message.attempts,
        "createdAt": iso(message.created_at),
        "finishedAt": iso(message.finished_at),
    }


def list_messages(
    session: Session,
    *,
    to_number: str | None = None,
    from_number: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The messages matching every filter given, newest first (at most ``limit``)."""
    rows = repository.search_messages(
        session,
        to_number=to_number,
        from_number=from_number,
        state=parse_status(status) if status else None,
        since=since,
        limit=max(1, min(limit, MAX_LIST)),
    )
    return [summary_json(row) for row in rows]


def _part_json(segment: SmsSegment, names: dict[str, str]) -> dict[str, Any]:
    receipt = segment.receipt_state
    return {
        "part": segment.sequence,
        "connection": names.get(segment.connection_id or "", segment.connection_id),
        "smscMessageId": segment.smsc_message_id,
        "submitState": segment.submit_state,
        "submitStatus": None if segment.submit_status is None else command_status_name(segment.submit_status),
        "receiptState": None if receipt is None else _receipt_name(receipt),
        "receiptError": segment.receipt_error,
        "receiptAt": iso(segment.receipt_at),
    }


def _receipt_name(state: int) -> str:
    try:
        return MessageState(state).name
    except ValueError:
        return str(state)


def _timeline(
    message: SmsMessage, parts: list[dict[str, Any]], events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What happened, in order: one entry a step."""
    steps: list[dict[str, Any]] = [{"at": iso(message.created_at), "step": "accepted"}]
    for part in parts:
        if part["smscMessageId"] or part["submitStatus"]:
            steps.append(
                {
                    "at": iso(message.submitted_at),
                    "step": "submitted"
                    if part["submitState"] == "accepted"
                    else f"submit {part['submitState']}",
                    "part": part["part"],
                    "connection": part["connection"],
                    "smscMessageId": part["smscMessageId"],
                    "status": part["submitStatus"],
                }
            )
        if part["receiptState"] is not None:
            steps.append(
                {
                    "at": part["receiptAt"],
                    "step": "receipt",
                    "part": part["part"],
                    "state": part["receiptState"],
                    "error": part["receiptError"],
                }
            )
    if message.finished_at is not None:
        steps.append(
            {
                "at": iso(message.finished_at),
                "step": message.state,
                "deliveryStatus": message.delivery_status,
                "details": message.delivery_status_details,
            }
        )
    for event in events:
        steps.append({"at": event["createdAt"], "step": "event", "type": event["type"], "id": event["id"]})
        for delivery in event["deliveries"]:
            steps.append(
                {
                    "at": delivery["finishedAt"] or delivery["createdAt"],
                    "step": "delivery",
                    "subscriptionId": delivery["subscriptionId"],
                    "status": delivery["status"],
                    "attempts": delivery["attempts"],
                    "lastStatusCode": delivery["lastStatusCode"],
                }
            )
    return sorted(steps, key=lambda step: step["at"] or "")


def _with_iso_times(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {key: _with_iso_times(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_iso_times(item) for item in value]
    return value


def message_history(session: Session, message_id: str) -> dict[str, Any]:
    """One message, its parts, the events published about it and its timeline."""
    message = repository.get_message(session, message_id)
    if message is None:
        raise NotFound(f"No message with id '{message_id}'.", "id")
    names = {c.id: c.name for c in connection_repository.all_connections(session)}
    parts = [_part_json(segment, names) for segment in repository.segments_of_message(session, message.id)]
    # A message's delivery report event has the message's id (as ACS does).
    events = _with_iso_times(event_history(session, [message.id]))
    return summary_json(message) | {
        "deliveryStatusDetails": message.delivery_status_details,
        "tag": message.tag,
        "error": message.error,
        "possibleDuplicates": message.possible_duplicates,
        "submittedAt": iso(message.submitted_at),
        "connection": names.get(message.connection_id or "", message.connection_id),
        "parts": parts,
        "events": events,
        "history": _timeline(message, parts, events),
    }
