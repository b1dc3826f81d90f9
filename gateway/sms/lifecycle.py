"""The SMS message lifecycle: the one owner of ``sms_messages.state`` and of what changes with it.

    (new) ─created─▶ queued ─submit accepted─▶ submitted ─every part final─▶ delivered | failed
                      │ ▲                        └─no final receipt in the report window─▶ expired
                      │ └─temporary error, failover to the next connection, no bound connection
                      ├─refused on the route's last connection, no route─▶ failed
                      └─not submitted within the report window─▶ expired

A final state (delivered, failed, expired) never changes. In the spirit of h11's ``_state.py``,
``TRANSITIONS`` is the table and :func:`transition` the one way through it: given a row's state
and an outcome it returns the :class:`Change` to write (None: the outcome came too late for a row
that moved on, which is then left alone), with the ACS delivery report that finishes the message
and, from :meth:`Change.event`, the event to publish with it. Every writer goes through here: the
send path and the automatic STOP/HELP reply (created), the SMPP worker's bulk writer and its
one-by-one path (submits, receipts), and its sweeper (timeouts, expiry).

Pure: no database, no clock (``now`` is given), no randomness (a retry's time is given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from gateway.events.builder import SMS_DELIVERY_REPORT_RECEIVED, phone_subject, sms_delivery_report_data
from gateway.sms.delivery_status import AcsDeliveryStatus, acs_delivery_status, aggregate_segment_states
from sms.receipts import DeliveryReceipt
from sms.receipts import MessageState as ReceiptState
from sms.status import describe_command_status


class SmsState(StrEnum):
    """``sms_messages.state``: where an outgoing message is in its life (the stored strings)."""

    QUEUED = "queued"  # accepted, waiting for (another) submit
    SUBMITTED = "submitted"  # every part accepted by the SMSC, waiting for receipts
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"  # no final receipt, or never submitted, within the report window


FINAL_STATES: frozenset[SmsState] = frozenset({SmsState.DELIVERED, SmsState.FAILED, SmsState.EXPIRED})


class SegmentSubmitState(StrEnum):
    """``sms_segments.submit_state``: whether the SMSC took the part (and gave its id)."""

    PENDING = "pending"
    ACCEPTED = "accepted"


class PartOutcome(StrEnum):
    """What one part's submit_sm came to."""

    ACCEPTED = "accepted"  # submit_sm_resp ESME_ROK with the SMSC's message id
    REFUSED = "refused"  # refused for good; its command status says why
    TEMPORARY_ERROR = "temporary_error"  # not taken, safe to send again (throttled, never written)
    UNKNOWN = "unknown"  # written but never answered: sending again may duplicate it


class ReceiptKind(StrEnum):
    """A receipt either settles its part (delivered or failed for good) or reports it in transit."""

    FINAL = "final"
    INTERMEDIATE = "intermediate"


def receipt_kind(state: ReceiptState) -> ReceiptKind:
    """Final: the part is delivered or failed for good (an ACS delivery status); else in transit."""
    return ReceiptKind.FINAL if acs_delivery_status(state) is not None else ReceiptKind.INTERMEDIATE


FINAL_RECEIPT_STATES: frozenset[ReceiptState] = frozenset(
    state for state in ReceiptState if receipt_kind(state) is ReceiptKind.FINAL
)


class PartReceipt(NamedTuple):
    """A part's latest receipt as stored: its SMPP state and the SMSC's error code."""

    state: ReceiptState
    error: str | None


class Outcome(StrEnum):
    """The kinds of outcome a message row can be told about (the columns of the table)."""

    CREATED = "created"
    SUBMIT_ACCEPTED = "submit_accepted"
    SUBMIT_REFUSED = "submit_refused"
    SUBMIT_FAILOVER = "submit_failover"
    SUBMIT_TEMPORARY_ERROR = "submit_temporary_error"
    NO_ROUTE = "no_route"
    NO_BOUND_CONNECTION = "no_bound_connection"
    RECEIPT_INTERMEDIATE = "receipt_intermediate"
    RECEIPTS_DELIVERED = "receipts_delivered"
    RECEIPTS_FAILED = "receipts_failed"
    REPORT_TIMEOUT = "report_timeout"
    QUEUE_EXPIRED = "queue_expired"


_STATES: Mapping[str | None, SmsState | None] = {None: None, **{state.value: state for state in SmsState}}
_Q, _S = SmsState.QUEUED, SmsState.SUBMITTED
TRANSITIONS: Mapping[tuple[SmsState | None, Outcome], SmsState] = MappingProxyType(
    {
        (None, Outcome.CREATED): _Q,
        (_Q, Outcome.SUBMIT_ACCEPTED): _S,
        (_Q, Outcome.SUBMIT_REFUSED): SmsState.FAILED,
        (_Q, Outcome.SUBMIT_FAILOVER): _Q,
        (_Q, Outcome.SUBMIT_TEMPORARY_ERROR): _Q,
        (_Q, Outcome.NO_ROUTE): SmsState.FAILED,
        (_Q, Outcome.NO_BOUND_CONNECTION): _Q,
        (_Q, Outcome.QUEUE_EXPIRED): SmsState.EXPIRED,
        (_S, Outcome.RECEIPT_INTERMEDIATE): _S,
        (_S, Outcome.RECEIPTS_DELIVERED): SmsState.DELIVERED,
        (_S, Outcome.RECEIPTS_FAILED): SmsState.FAILED,
        (_S, Outcome.REPORT_TIMEOUT): SmsState.EXPIRED,
    }
)
"""(state before, outcome) -> state after. A pair not in the table leaves the row alone: every
final state, a receipt for a part of a message still queued (its segment keeps it), a submit
outcome for a message a receipt already finished."""
_CREATED = TRANSITIONS[(None, Outcome.CREATED)]

QUEUE_EXPIRY_DETAILS = (
    "Failed: the message could not be submitted to a carrier within deliveryReportTimeoutInSeconds."
)


# Outcomes ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Created:
    """A new message (POST /sms, an automatic STOP/HELP reply): queued, due at once."""

    @property
    def kind(self) -> Outcome:
        return Outcome.CREATED


@dataclass(frozen=True, slots=True)
class SubmitAccepted:
    """The SMSC has accepted every part of the message (in this attempt or earlier ones)."""

    connection_id: str
    report_timeout_seconds: int

    @property
    def kind(self) -> Outcome:
        return Outcome.SUBMIT_ACCEPTED


@dataclass(frozen=True, slots=True)
class SubmitRefused:
    """A part was refused for good. ``tried_connections``: the connections that refused the
    message, this one included (comma list); ``failover``: the route has another, tried at once."""

    status: int | None
    tried_connections: str
    failover: bool
    segment_count: int

    @property
    def kind(self) -> Outcome:
        return Outcome.SUBMIT_FAILOVER if self.failover else Outcome.SUBMIT_REFUSED

    @property
    def error(self) -> str:
        status = self.status if self.status is not None else 0
        return f"The SMSC rejected the message: {describe_command_status(status)}."


@dataclass(frozen=True, slots=True)
class SubmitTemporaryError:
    """Some part was not accepted but may be sent again (throttled, unanswered): at ``retry_at``."""

    retry_at: datetime

    @property
    def kind(self) -> Outcome:
        return Outcome.SUBMIT_TEMPORARY_ERROR


@dataclass(frozen=True, slots=True)
class Unroutable:
    """Nothing can be submitted, for good: no route, every connection of it refused the message,
    or the codecs refuse it (``reason`` says which)."""

    reason: str
    segment_count: int

    @property
    def kind(self) -> Outcome:
        return Outcome.NO_ROUTE


@dataclass(frozen=True, slots=True)
class NoBoundConnection:
    """Nothing was submitted: no connection of the route is bound now. Waiting for a bind is not
    an attempt: ``attempts`` goes back to what it was before the claim, and the message waits
    for a bind (released when one comes up), ``retry_at`` being only a backstop."""

    retry_at: datetime
    attempts: int = 0

    @property
    def kind(self) -> Outcome:
        return Outcome.NO_BOUND_CONNECTION


@dataclass(frozen=True, slots=True)
class ReceiptsRecorded:
    """A receipt came in: the parts' latest receipts in sequence order (None: none yet)."""

    parts: tuple[PartReceipt | None, ...]

    @property
    def kind(self) -> Outcome:
        return _receipts_kind(self.parts)[0]


@dataclass(frozen=True, slots=True)
class ReportTimedOut:
    """The report window ended before every part had a final receipt."""

    parts: tuple[PartReceipt | None, ...]

    @property
    def kind(self) -> Outcome:
        return Outcome.REPORT_TIMEOUT


@dataclass(frozen=True, slots=True)
class QueueExpired:
    """The report window ended before the message could be submitted."""

    segment_count: int

    @property
    def kind(self) -> Outcome:
        return Outcome.QUEUE_EXPIRED


MessageOutcome = (
    Created
    | SubmitAccepted
    | SubmitRefused
    | SubmitTemporaryError
    | Unroutable
    | NoBoundConnection
    | ReceiptsRecorded
    | ReportTimedOut
    | QueueExpired
)


# Changes --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Report:
    """The ACS delivery report a message is finished with."""

    status: AcsDeliveryStatus
    details: str
    segments_succeeded: int
    segments_failed: int


class ReportedMessage(Protocol):
    """What a delivery report event says of its message (an ORM row or a row of a bulk read)."""

    @property
    def id(self) -> str: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def from_number(self) -> str: ...
    @property
    def to_number(self) -> str: ...
    @property
    def tag(self) -> str | None: ...
    @property
    def submitted_at(self) -> datetime | None: ...
    @property
    def enable_delivery_report(self) -> bool: ...


class ReportEvent(NamedTuple):
    """An ``SMSDeliveryReportReceived`` event to publish in the transaction that writes its change."""

    resource_id: str
    event_type: str
    subject: str
    data: dict[str, Any]
    event_time: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class Change:
    """What an outcome does to a row: the ``sms_messages`` columns to set (``state`` among them
    when it changes) and, when it finishes the message, its delivery report."""

    outcome: Outcome
    before: SmsState | None
    after: SmsState
    values: dict[str, Any]
    report: Report | None = None

    @property
    def event_type(self) -> str | None:
        """The event this change publishes (when the message asked for delivery reports)."""
        return SMS_DELIVERY_REPORT_RECEIVED if self.report is not None else None

    def event(self, message: ReportedMessage) -> ReportEvent | None:
        """The event to publish with this change, if any: the delivery report of a finished
        message that asked for one. Its id is the message id, as ACS does."""
        if self.report is None or not message.enable_delivery_report:
            return None
        report, received_at = self.report, self.values["report_received_at"]
        submitted_at = self.values.get("submitted_at", message.submitted_at)
        return ReportEvent(
            resource_id=message.resource_id,
            event_type=SMS_DELIVERY_REPORT_RECEIVED,
            subject=phone_subject(message.to_number),
            data=report_data(
                message.id,
                message.from_number,
                message.to_number,
                report.status,
                report.details,
                received_at,
                submitted_at,
                report.segments_succeeded,
                report.segments_failed,
                message.tag,
            ),
            event_time=received_at,
            event_id=message.id,
        )


def report_data(
    message_id: str,
    from_number: str,
    to_number: str,
    status: str,
    details: str,
    received_at: datetime,
    submitted_at: datetime | None,
    succeeded: int,
    failed: int,
    tag: str | None,
) -> dict[str, Any]:
    """A delivery report's data: one delivery attempt, at the submit time (the report's when the
    message was never submitted)."""
    return sms_delivery_report_data(
        message_id,
        from_number,
        to_number,
        status,
        details,
        received_at,
        [(submitted_at or received_at, succeeded, failed)],
        tag,
    )


def transition(state: str | None, outcome: MessageOutcome, now: datetime) -> Change | None:
    """The change ``outcome`` makes to a row in ``state`` (None: a row still to be created), or
    None when the table has no such transition: the row is then left alone."""
    before = _STATES[state]
    report: Report | None = None
    if isinstance(outcome, ReceiptsRecorded):
        kind, report = _receipts_kind(outcome.parts)
    elif isinstance(outcome, ReportTimedOut):
        kind, report = Outcome.REPORT_TIMEOUT, _aggregate(outcome.parts, timed_out=True)
    else:
        kind = outcome.kind
    after = TRANSITIONS.get((before, kind))
    if after is None:
        return None
    values, failure = _values(outcome, after, now)
    report = report or failure
    if report is not None:
        values |= _finished(after, report, now)
    return Change(kind, before, after, values, report)


def _values(  # noqa: PLR0911 - one return per kind of outcome
    outcome: MessageOutcome, after: SmsState, now: datetime
) -> tuple[dict[str, Any], Report | None]:
    """The columns an outcome sets besides a finished message's report, and the report of a
    failure it decides by itself (not from receipts)."""
    match outcome:
        case Created():
            return created(now), None
        case SubmitAccepted(connection_id, timeout):
            return {
                "state": after,
                "in_doubt": False,
                "claimed_until": None,
                "connection_id": connection_id,
                "submitted_at": now,
                "dlr_deadline": now + timedelta(seconds=timeout),
            }, None
        case SubmitRefused(failover=True):
            return {
                "error": outcome.error,
                "tried_connections": outcome.tried_connections,
                "next_attempt_at": now,
            }, None
        case SubmitRefused(segment_count=segment_count):
            error = outcome.error
            refused: dict[str, Any] = {"error": error, "tried_connections": outcome.tried_connections}
            return refused, Report(AcsDeliveryStatus.FAILED, error, 0, segment_count)
        case SubmitTemporaryError(retry_at):
            return {"next_attempt_at": retry_at}, None
        case NoBoundConnection(retry_at, attempts):  # nothing was written: the claim is over, in no doubt
            return {
                "claimed_until": None,
                "in_doubt": False,
                "next_attempt_at": retry_at,
                "attempts": attempts,
                "waiting_for_bind": True,
            }, None
        case Unroutable(reason, segment_count):
            unroutable: dict[str, Any] = {"claimed_until": None, "in_doubt": False, "error": reason}
            return unroutable, Report(AcsDeliveryStatus.FAILED, reason, 0, segment_count)
        case QueueExpired(segment_count):
            return {}, Report(AcsDeliveryStatus.FAILED, QUEUE_EXPIRY_DETAILS, 0, segment_count)
    return {}, None  # receipts, report timeout: their report is the parts' aggregate


def created(now: datetime) -> dict[str, Any]:
    """The lifecycle's columns of a new message row (the send path, an automatic reply): queued,
    due now. Its own function, not a transition per row: POST /sms builds one row per recipient."""
    return {"state": _CREATED, "next_attempt_at": now, "created_at": now}


def _finished(state: SmsState, report: Report, now: datetime) -> dict[str, Any]:
    return {
        "state": state,
        "finished_at": now,
        "claimed_until": None,
        "delivery_status": report.status,
        "delivery_status_details": report.details,
        "report_received_at": now,
        "segments_succeeded": report.segments_succeeded,
        "segments_failed": report.segments_failed,
    }


def _receipts_kind(parts: Sequence[PartReceipt | None]) -> tuple[Outcome, Report | None]:
    report = _aggregate(parts, timed_out=False)
    if report is None:
        return Outcome.RECEIPT_INTERMEDIATE, None
    if report.status is AcsDeliveryStatus.DELIVERED:
        return Outcome.RECEIPTS_DELIVERED, report
    return Outcome.RECEIPTS_FAILED, report


def _aggregate(parts: Sequence[PartReceipt | None], *, timed_out: bool) -> Report | None:
    """The parts' ACS report, a part still in transit counting as having no receipt; None while
    some part has no final receipt and the report window is open."""
    outcomes = [
        None
        if part is None or part.state not in FINAL_RECEIPT_STATES
        else DeliveryReceipt(
            message_id=None,
            state=part.state,
            error=part.error,
            network_error=None,  # not stored: the details quote the state and error
            submit_date=None,
            done_date=None,
            submitted=None,
            delivered=None,
            text=None,
        )
        for part in parts
    ]
    if not timed_out and any(outcome is None for outcome in outcomes):
        return None
    aggregate = aggregate_segment_states(outcomes, timed_out=timed_out)
    assert aggregate.status is not None  # every part final, or timed out
    return Report(
        aggregate.status, aggregate.details, aggregate.segments_succeeded, aggregate.segments_failed
    )
