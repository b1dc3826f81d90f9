"""What is read about sent messages: ACS delivery reports (the GET body and the event's data
alike), a message as the operator sees it, and the operator's counts."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from gateway.core.errors import NotFound
from gateway.events.builder import format_time
from gateway.sms import lifecycle
from gateway.sms.models import SmsMessage, SmsSegment
from gateway.sms.repository import messages as repository


def report_data(message: SmsMessage) -> dict[str, Any]:
    """The ACS delivery report of a finished message (the GET body; its event's data is the same,
    built by the lifecycle when the message finished)."""
    assert message.delivery_status is not None
    assert message.report_received_at is not None
    return lifecycle.report_data(
        message.id,
        message.from_number,
        message.to_number,
        message.delivery_status,
        message.delivery_status_details or "",
        message.report_received_at,
        message.submitted_at,
        message.segments_succeeded,
        message.segments_failed,
        message.tag,
    )


def delivery_report(session: Session, resource_id: str, message_id: str) -> dict[str, Any]:
    """GET /deliveryReports/{id}: the report of the resource's message, once it has one."""
    message = repository.get_message(session, message_id)
    if message is None or message.resource_id != resource_id or message.delivery_status is None:
        raise NotFound(f"No delivery report for message '{message_id}'.", "outgoingMessageId")
    return report_data(message)


def message_json(message: SmsMessage, segments: list[SmsSegment]) -> dict[str, Any]:
    """A message and its segments as the operator's tools show them."""
    return {
        "id": message.id,
        "from": message.from_number,
        "to": message.to_number,
        "state": message.state,
        "segmentCount": message.segment_count,
        "attempts": message.attempts,
        "possibleDuplicates": message.possible_duplicates,
        "error": message.error,
        "createdAt": format_time(message.created_at),
        "segments": [
            {"sequence": s.sequence, "smscMessageId": s.smsc_message_id, "submitState": s.submit_state}
            for s in segments
        ],
    }


def stats(session: Session) -> dict[str, Any]:
    """The operator's counts: messages by state, and possible duplicates."""
    return {
        "messages": repository.count_by_state(session),
        "possibleDuplicates": repository.possible_duplicates(session),
    }
