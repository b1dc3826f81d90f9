"""ACS delivery statuses from SMPP receipts (gateway/sms/delivery_status.py): the mapping of every
SMPP state, the details, and the aggregation of a message's segments."""

from __future__ import annotations

import pytest

from gateway.sms.delivery_status import (
    TIMEOUT_DETAILS,
    AcsDeliveryStatus,
    acs_delivery_status,
    aggregate_segment_states,
    delivery_status_details,
)
from sms.receipts import DeliveryReceipt, MessageState, NetworkErrorCode, is_final_state


@pytest.mark.parametrize(
    ("state", "status"),
    [
        (MessageState.SCHEDULED, None),
        (MessageState.ENROUTE, None),
        (MessageState.DELIVERED, AcsDeliveryStatus.DELIVERED),
        (MessageState.ACCEPTED, AcsDeliveryStatus.DELIVERED),
        (MessageState.EXPIRED, AcsDeliveryStatus.FAILED),
        (MessageState.DELETED, AcsDeliveryStatus.FAILED),
        (MessageState.UNDELIVERABLE, AcsDeliveryStatus.FAILED),
        (MessageState.UNKNOWN, AcsDeliveryStatus.FAILED),
        (MessageState.REJECTED, AcsDeliveryStatus.FAILED),
        (MessageState.SKIPPED, AcsDeliveryStatus.FAILED),
    ],
)
def test_acs_status_of_every_state(state: MessageState, status: AcsDeliveryStatus | None) -> None:
    assert acs_delivery_status(state) == status
    assert is_final_state(state) is (status is not None)


def test_acs_status_strings_are_those_of_the_spec() -> None:
    assert {status.value for status in AcsDeliveryStatus} == {"Delivered", "Failed"}


def test_details() -> None:
    assert delivery_status_details(MessageState.DELIVERED) == "No error."
    details = delivery_status_details(MessageState.UNDELIVERABLE, "011", NetworkErrorCode(3, 27))
    assert details.startswith("Undeliverable")
    assert "SMPP stat UNDELIV" in details
    assert "err 011" in details
    assert "GSM error 27" in details
    assert "err" not in delivery_status_details(MessageState.EXPIRED, "000")


def test_aggregate_all_delivered() -> None:
    aggregate = aggregate_segment_states([MessageState.DELIVERED, MessageState.DELIVERED])
    assert aggregate.status == AcsDeliveryStatus.DELIVERED
    assert aggregate.details == "No error."
    assert (aggregate.segments_succeeded, aggregate.segments_failed, aggregate.segments_pending) == (2, 0, 0)
    assert aggregate.is_final


def test_aggregate_pending_until_every_segment_is_final() -> None:
    aggregate = aggregate_segment_states([MessageState.DELIVERED, None, MessageState.ENROUTE])
    assert aggregate.status is None
    assert not aggregate.is_final
    assert (aggregate.segments_succeeded, aggregate.segments_failed, aggregate.segments_pending) == (1, 0, 2)


def test_aggregate_one_failed_segment_fails_the_message() -> None:
    receipt = DeliveryReceipt(
        message_id="x",
        state=MessageState.EXPIRED,
        error="027",
        network_error=None,
        submit_date=None,
        done_date=None,
        submitted=1,
        delivered=0,
        text=None,
    )
    aggregate = aggregate_segment_states([MessageState.DELIVERED, receipt, MessageState.DELIVERED])
    assert aggregate.status == AcsDeliveryStatus.FAILED
    assert (aggregate.segments_succeeded, aggregate.segments_failed) == (2, 1)
    assert aggregate.details.startswith("1 of 3 segments failed. Expired")
    assert "err 027" in aggregate.details


def test_aggregate_timeout_counts_pending_segments_as_failed() -> None:
    aggregate = aggregate_segment_states([MessageState.DELIVERED, None], timed_out=True)
    assert aggregate.status == AcsDeliveryStatus.FAILED
    assert aggregate.details == TIMEOUT_DETAILS
    assert (aggregate.segments_succeeded, aggregate.segments_failed, aggregate.segments_pending) == (1, 1, 0)


def test_aggregate_needs_a_segment() -> None:
    with pytest.raises(ValueError, match="segment"):
        aggregate_segment_states([])
