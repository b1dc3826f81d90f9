"""What SMPP receipts mean for an ACS delivery report: ``deliveryStatus`` "Delivered" or "Failed"
(the ``DeliveryReport`` enum of the 2026-01-23 SMS API; the Event Grid
``SMSDeliveryReportReceived`` example uses "Delivered"), explained by ``deliveryStatusDetails``
and counted per segment in ``deliveryAttempts``.

ACS rules, so they live in the gateway; the SMPP side (states, parsing) is sms/receipts.py.
Pure: the message lifecycle (gateway/sms/lifecycle.py) aggregates its segments' receipts here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sms.receipts import (
    FAILURE_STATES,
    STAT_TEXT,
    SUCCESS_STATES,
    DeliveryReceipt,
    MessageState,
    NetworkErrorCode,
)


class AcsDeliveryStatus(StrEnum):
    """``deliveryStatus`` values of ACS delivery reports (``DeliveryReport`` in the 2026-01-23 spec)."""

    DELIVERED = "Delivered"
    FAILED = "Failed"


_STATE_DETAILS: dict[MessageState, str] = {
    MessageState.DELIVERED: "No error.",
    MessageState.ACCEPTED: "Accepted on behalf of the recipient by the carrier.",
    MessageState.EXPIRED: "Expired: not delivered before the end of its validity period.",
    MessageState.DELETED: "Deleted by the carrier before delivery.",
    MessageState.UNDELIVERABLE: "Undeliverable: the carrier could not deliver the message to the recipient.",
    MessageState.UNKNOWN: "Unknown: the carrier reported the message in an unknown state.",
    MessageState.REJECTED: "Rejected by the carrier.",
    MessageState.SKIPPED: "Skipped by the carrier.",
    MessageState.ENROUTE: "En route: not yet delivered.",
    MessageState.SCHEDULED: "Scheduled: not yet delivered.",
}


def acs_delivery_status(state: MessageState) -> AcsDeliveryStatus | None:
    """Delivered / Failed for a final state; None while the part is still in transit."""
    if state in SUCCESS_STATES:
        return AcsDeliveryStatus.DELIVERED
    if state in FAILURE_STATES:
        return AcsDeliveryStatus.FAILED
    return None


def delivery_status_details(
    state: MessageState, error: str | None = None, network_error: NetworkErrorCode | None = None
) -> str:
    """Human ``deliveryStatusDetails``: what the state means, and the carrier's error codes.

    The SMPP stat name and codes are quoted so an operator can look them up with the carrier.
    """
    details = _STATE_DETAILS[state]
    if state == MessageState.DELIVERED:
        return details
    codes = [f"SMPP stat {STAT_TEXT[state]}"]
    if error and error.strip("0"):
        codes.append(f"err {error}")
    if network_error is not None:
        codes.append(network_error.describe())
    return f"{details} ({', '.join(codes)})"


TIMEOUT_DETAILS = "Failed: no final delivery receipt arrived within deliveryReportTimeoutInSeconds."


@dataclass(frozen=True, slots=True)
class DeliveryAggregate:
    """The message-level outcome from the outcomes of its segments."""

    status: AcsDeliveryStatus | None
    """None while some segment has no final state and the report has not timed out."""
    details: str
    segments_succeeded: int
    segments_failed: int
    segments_pending: int

    @property
    def is_final(self) -> bool:
        return self.status is not None


SegmentOutcome = MessageState | DeliveryReceipt | None
"""A segment's latest state, or its latest receipt (whose error codes then reach the details)."""


def aggregate_segment_states(
    states: Sequence[SegmentOutcome], *, timed_out: bool = False
) -> DeliveryAggregate:
    """Combine per-segment outcomes (None: no receipt yet) into one ACS report.

    Delivered only when every segment succeeded; Failed once every segment is final and one
    failed, or on timeout (pending segments then count as failed). Otherwise still pending.
    The details describe the first failed segment, with its carrier error codes if a receipt
    was given.
    """
    if not states:
        raise ValueError("a message has at least one segment")
    receipts = [item if isinstance(item, DeliveryReceipt) else None for item in states]
    plain = [item.state if isinstance(item, DeliveryReceipt) else item for item in states]
    succeeded = sum(1 for state in plain if state in SUCCESS_STATES)
    failed_indexes = [index for index, state in enumerate(plain) if state in FAILURE_STATES]
    failed = len(failed_indexes)
    pending = len(plain) - succeeded - failed
    if pending and not timed_out:
        return DeliveryAggregate(None, "Pending.", succeeded, failed, pending)
    if pending:
        return DeliveryAggregate(AcsDeliveryStatus.FAILED, TIMEOUT_DETAILS, succeeded, failed + pending, 0)
    if not failed:
        shown = next((state for state in plain if state != MessageState.DELIVERED), MessageState.DELIVERED)
        assert shown is not None
        return DeliveryAggregate(AcsDeliveryStatus.DELIVERED, delivery_status_details(shown), succeeded, 0, 0)
    first = failed_indexes[0]
    failed_state = plain[first]
    assert failed_state is not None
    receipt = receipts[first]
    details = delivery_status_details(
        failed_state,
        receipt.error if receipt else None,
        receipt.network_error if receipt else None,
    )
    if len(plain) > 1:
        details = f"{failed} of {len(plain)} segments failed. {details}"
    return DeliveryAggregate(AcsDeliveryStatus.FAILED, details, succeeded, failed, 0)
