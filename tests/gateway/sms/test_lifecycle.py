"""The SMS message lifecycle (gateway/sms/lifecycle.py): its table, and properties of every
transition (a final state never changes, what each writes, which event it publishes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.events.builder import SMS_DELIVERY_REPORT_RECEIVED, phone_subject
from gateway.sms import lifecycle
from gateway.sms.delivery_status import TIMEOUT_DETAILS, AcsDeliveryStatus
from gateway.sms.lifecycle import (
    FINAL_STATES,
    QUEUE_EXPIRY_DETAILS,
    TRANSITIONS,
    Created,
    MessageOutcome,
    NoBoundConnection,
    Outcome,
    PartReceipt,
    QueueExpired,
    ReceiptKind,
    ReceiptsRecorded,
    ReportTimedOut,
    SmsState,
    SubmitAccepted,
    SubmitRefused,
    SubmitTemporaryError,
    Unroutable,
    receipt_kind,
    transition,
)
from sms.receipts import FINAL_STATES as FINAL_RECEIPT_STATES
from sms.receipts import SUCCESS_STATES
from sms.receipts import MessageState as ReceiptState

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@dataclass
class Row:
    """A message row as a report event reads it."""

    id: str = "Outgoing_1"
    resource_id: str = "resource"
    from_number: str = "+14255550100"
    to_number: str = "+14255550123"
    tag: str | None = "t"
    submitted_at: datetime | None = None
    enable_delivery_report: bool = True


times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC))
counts = st.integers(min_value=1, max_value=6)
part_receipts = st.one_of(
    st.none(),
    st.builds(
        PartReceipt, st.sampled_from(ReceiptState), st.one_of(st.none(), st.sampled_from(["000", "034"]))
    ),
)
parts = st.lists(part_receipts, min_size=1, max_size=5).map(tuple)
outcomes: st.SearchStrategy[MessageOutcome] = st.one_of(
    st.just(Created()),
    st.builds(SubmitAccepted, st.sampled_from(["conn-a", "conn-b"]), st.integers(1, 86400)),
    st.builds(
        SubmitRefused,
        st.one_of(st.none(), st.integers(0, 0x500)),
        st.sampled_from(["conn-a", "conn-a,conn-b"]),
        st.booleans(),
        counts,
    ),
    st.builds(SubmitTemporaryError, times),
    st.builds(Unroutable, st.text(min_size=1, max_size=40), counts),
    st.builds(NoBoundConnection, times),
    st.builds(ReceiptsRecorded, parts),
    st.builds(ReportTimedOut, parts),
    st.builds(QueueExpired, counts),
)
states = st.sampled_from([None, *SmsState])


def test_the_table() -> None:
    q, s, d, f, e = (
        SmsState.QUEUED,
        SmsState.SUBMITTED,
        SmsState.DELIVERED,
        SmsState.FAILED,
        SmsState.EXPIRED,
    )
    assert dict(TRANSITIONS) == {
        (None, Outcome.CREATED): q,
        (q, Outcome.SUBMIT_ACCEPTED): s,
        (q, Outcome.SUBMIT_REFUSED): f,
        (q, Outcome.SUBMIT_FAILOVER): q,
        (q, Outcome.SUBMIT_TEMPORARY_ERROR): q,
        (q, Outcome.NO_ROUTE): f,
        (q, Outcome.NO_BOUND_CONNECTION): q,
        (q, Outcome.QUEUE_EXPIRED): e,
        (s, Outcome.RECEIPT_INTERMEDIATE): s,
        (s, Outcome.RECEIPTS_DELIVERED): d,
        (s, Outcome.RECEIPTS_FAILED): f,
        (s, Outcome.REPORT_TIMEOUT): e,
    }


def test_the_stored_strings_are_those_of_the_database() -> None:
    # no migration: the values rows already hold
    assert [state.value for state in SmsState] == ["queued", "submitted", "delivered", "failed", "expired"]
    assert {state.value for state in FINAL_STATES} == {"delivered", "failed", "expired"}


@given(outcome=outcomes)
def test_a_final_state_never_changes(outcome: MessageOutcome) -> None:
    for state in FINAL_STATES:
        assert transition(state, outcome, NOW) is None


@given(state=states, outcome=outcomes)
def test_a_transition_is_the_table_s(state: SmsState | None, outcome: MessageOutcome) -> None:
    change = transition(state, outcome, NOW)
    expected = TRANSITIONS.get((state, outcome.kind))
    if expected is None:
        assert change is None
        return
    assert change is not None
    assert (change.outcome, change.before, change.after) == (outcome.kind, state, expected)
    # the state is written exactly when it changes
    assert ("state" in change.values) is (change.after != change.before)
    assert change.values.get("state", change.before) == change.after


@given(state=states, outcome=outcomes, asks=st.booleans())
def test_every_transition_s_event(state: SmsState | None, outcome: MessageOutcome, asks: bool) -> None:
    change = transition(state, outcome, NOW)
    if change is None:
        return
    finishes = change.after in FINAL_STATES
    assert change.event_type == (SMS_DELIVERY_REPORT_RECEIVED if finishes else None)
    assert (change.report is not None) is finishes
    row = Row(enable_delivery_report=asks)
    event = change.event(row)
    if not finishes or not asks:
        assert event is None
        return
    assert event is not None
    assert change.report is not None
    assert (event.event_id, event.resource_id, event.event_type) == (
        row.id,
        row.resource_id,
        change.event_type,
    )
    assert event.subject == phone_subject(row.to_number)
    assert event.event_time == NOW
    assert event.data["messageId"] == row.id
    assert event.data["deliveryStatus"] == change.report.status
    assert event.data["deliveryStatusDetails"] == change.report.details
    [attempt] = event.data["deliveryAttempts"]
    assert (attempt["segmentsSucceeded"], attempt["segmentsFailed"]) == (
        change.report.segments_succeeded,
        change.report.segments_failed,
    )


@given(state=states, outcome=outcomes)
def test_a_finished_message_carries_its_report(state: SmsState | None, outcome: MessageOutcome) -> None:
    change = transition(state, outcome, NOW)
    if change is None or change.report is None:
        return
    report, values = change.report, change.values
    assert values["finished_at"] == values["report_received_at"] == NOW
    assert values["claimed_until"] is None
    assert values["delivery_status"] == report.status
    assert values["delivery_status_details"] == report.details
    assert (values["segments_succeeded"], values["segments_failed"]) == (
        report.segments_succeeded,
        report.segments_failed,
    )
    total = len(outcome.parts) if isinstance(outcome, ReceiptsRecorded | ReportTimedOut) else None
    total = total or getattr(outcome, "segment_count", None)
    assert report.segments_succeeded + report.segments_failed == total
    if change.after is SmsState.DELIVERED:
        assert report.status is AcsDeliveryStatus.DELIVERED
    elif change.after is SmsState.FAILED:
        assert report.status is AcsDeliveryStatus.FAILED


@given(parts=parts)
def test_receipts_finish_a_message_once_every_part_is_final(parts: tuple[PartReceipt | None, ...]) -> None:
    change = transition(SmsState.SUBMITTED, ReceiptsRecorded(parts), NOW)
    assert change is not None
    final = all(p is not None and receipt_kind(p.state) is ReceiptKind.FINAL for p in parts)
    if not final:
        assert (change.outcome, change.after, change.values) == (
            Outcome.RECEIPT_INTERMEDIATE,
            SmsState.SUBMITTED,
            {},
        )
        return
    delivered = all(p is not None and p.state in SUCCESS_STATES for p in parts)
    assert change.after is (SmsState.DELIVERED if delivered else SmsState.FAILED)


@given(parts=parts)
def test_a_report_timeout_expires_a_submitted_message(parts: tuple[PartReceipt | None, ...]) -> None:
    change = transition(SmsState.SUBMITTED, ReportTimedOut(parts), NOW)
    assert change is not None
    assert change.after is SmsState.EXPIRED
    assert change.report is not None
    if any(p is None or p.state not in FINAL_RECEIPT_STATES for p in parts):
        assert change.report.status is AcsDeliveryStatus.FAILED
        assert change.report.details == TIMEOUT_DETAILS


@given(steps=st.lists(outcomes, max_size=12))
def test_a_message_s_life_publishes_at_most_one_report(steps: list[MessageOutcome]) -> None:
    state: SmsState | None = None
    reports = 0
    for outcome in steps:
        change = transition(state, outcome, NOW)
        if change is None:
            continue
        assert change.before == state
        if state in FINAL_STATES:
            pytest.fail("a final state changed")
        state = change.after
        reports += change.report is not None
    assert reports == (1 if state in FINAL_STATES else 0)


def test_submit_accepted_starts_the_report_window() -> None:
    change = transition(SmsState.QUEUED, SubmitAccepted("conn-a", 600), NOW)
    assert change is not None
    assert change.values == {
        "state": SmsState.SUBMITTED,
        "in_doubt": False,
        "claimed_until": None,
        "connection_id": "conn-a",
        "submitted_at": NOW,
        "dlr_deadline": NOW + timedelta(seconds=600),
    }
    assert transition(SmsState.SUBMITTED, SubmitAccepted("conn-a", 600), NOW) is None  # came late


def test_a_refusal_fails_over_while_the_route_has_another_connection() -> None:
    failover = transition(SmsState.QUEUED, SubmitRefused(0x0B, "conn-a", True, 2), NOW)
    assert failover is not None
    assert failover.after is SmsState.QUEUED
    assert failover.values["next_attempt_at"] == NOW
    assert failover.values["tried_connections"] == "conn-a"
    assert "ESME_RINVDSTADR" in failover.values["error"]
    refused = transition(SmsState.QUEUED, SubmitRefused(0x0B, "conn-a,conn-b", False, 2), NOW)
    assert refused is not None
    assert refused.after is SmsState.FAILED
    assert refused.report == lifecycle.Report(AcsDeliveryStatus.FAILED, refused.values["error"], 0, 2)


def test_nothing_routable_releases_the_claim() -> None:
    later = NOW + timedelta(seconds=5)
    waiting = transition(SmsState.QUEUED, NoBoundConnection(later, attempts=2), NOW)
    assert waiting is not None
    assert waiting.values == {
        "claimed_until": None,
        "in_doubt": False,
        "next_attempt_at": later,
        "attempts": 2,  # what it was before the claim: waiting for a bind is not an attempt
        "waiting_for_bind": True,
    }
    failed = transition(SmsState.QUEUED, Unroutable("No SMPP route for destination +44.", 1), NOW)
    assert failed is not None
    assert failed.after is SmsState.FAILED
    assert failed.values["error"] == "No SMPP route for destination +44."
    assert failed.values["in_doubt"] is False


def test_a_queued_message_expires_with_a_failed_report() -> None:
    change = transition(SmsState.QUEUED, QueueExpired(3), NOW)
    assert change is not None
    assert change.after is SmsState.EXPIRED
    assert change.report == lifecycle.Report(AcsDeliveryStatus.FAILED, QUEUE_EXPIRY_DETAILS, 0, 3)


def test_a_new_message_is_queued_and_due() -> None:
    assert lifecycle.created(NOW) == {"state": SmsState.QUEUED, "next_attempt_at": NOW, "created_at": NOW}


def test_a_report_quotes_the_submit_time_of_the_same_change() -> None:
    # the one-by-one path finishes a message in the write that submits it (receipt before resp)
    submitted = transition(SmsState.QUEUED, SubmitAccepted("conn-a", 60), NOW)
    assert submitted is not None
    row = Row(submitted_at=NOW)
    later = NOW + timedelta(seconds=3)
    delivered = transition(
        SmsState.SUBMITTED, ReceiptsRecorded((PartReceipt(ReceiptState.DELIVERED, "000"),)), later
    )
    assert delivered is not None
    event = delivered.event(row)
    assert event is not None
    assert event.data["deliveryAttempts"][0]["timestamp"].startswith("2026-12-06T12:00:00")
    assert event.data["receivedTimestamp"].startswith("2026-12-06T12:00:03")
