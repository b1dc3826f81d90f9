"""POST /sms's rules: a request's recipients parsed and planned, the batch's reads, and each
request decided (the sender, the message's length, opt-outs, quotas, repeatability) into its
answer and the ``queued`` rows the SMPP worker sends. No FastAPI here; the SQL is in
``repository.send``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.core.errors import AcsError, BadRequest, InvalidField
from gateway.core.settings import Settings
from gateway.sms import lifecycle, quotas
from gateway.sms.addresses import e164_and_region, sender_or_400
from gateway.sms.optouts import OPTED_OUT_MESSAGE
from gateway.sms.repository import send as repository
from gateway.sms.repository.counters import CounterKey
from gateway.sms.schemas import SendMessageRequest, SmsRecipient
from sms.segmentation import MessageTooLongError, segment_message


@dataclass
class SendOutcome:
    """A request's answer: one item per recipient, and the ids of the messages queued."""

    items: list[dict[str, Any]]
    queued: list[str]


def new_message_id(now: datetime) -> str:
    return f"Outgoing_{now.strftime('%Y%m%d%H%M%S')}{uuid.uuid4()}"


def message_row(
    message_id: str,
    *,
    resource_id: str,
    sender: str,
    to: str,
    country: str,
    text: str,
    segment_count: int,
    data_coding: int,
    report_timeout_seconds: int,
    now: datetime,
    tag: str | None = None,
    enable_delivery_report: bool = False,
    validity_period_seconds: int | None = None,
    repeatability_request_id: str | None = None,
    repeatability_first_sent: str | None = None,
) -> dict[str, Any]:
    """The ``sms_messages`` row of a message to send: a ``queued`` send job, due now (an
    accepted recipient of POST /sms, or the worker's automatic STOP/HELP reply)."""
    return {
        "id": message_id,
        "resource_id": resource_id,
        "from_number": sender,
        "to_number": to,
        "country_code": country,
        "text": text,
        "segment_count": segment_count,
        "data_coding": data_coding,
        "tag": tag,
        "enable_delivery_report": enable_delivery_report,
        "delivery_report_timeout_seconds": report_timeout_seconds,
        "validity_period_seconds": validity_period_seconds,
        "repeatability_request_id": repeatability_request_id,
        "repeatability_first_sent": repeatability_first_sent,
        **lifecycle.created(now),
    }


def _check_capability(sender: str, sms_capability: str | None) -> None:
    """``sms_capability`` is the number's SMS capability, None when the resource does not own it."""
    if sms_capability is None:
        raise BadRequest(
            f"The From phone number {sender} is not a number this resource has purchased.",
            "from",
            "InvalidFromPhoneNumber",
        )
    if "outbound" not in sms_capability.split("+"):
        raise BadRequest(
            f"The From phone number {sender} does not have the SMS outbound capability.",
            "from",
            "InvalidFromPhoneNumber",
        )


def _item(to: str, status: int, message_id: str | None = None, error: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"to": to, "httpStatusCode": status, "successful": status == 202}
    if message_id is not None:
        item["messageId"] = message_id
    if error is not None:
        item["errorMessage"] = error
    return item


def _repeat_item(to: str, message_id: str) -> dict[str, Any]:
    item = _item(to, 202, message_id)
    item["repeatabilityResult"] = "accepted"
    return item


def _parse_first_sent(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None


# Plans: what is known of a request before the database is read ----------------------------------


@dataclass
class _Recipient:
    """A recipient as written in the request, and what its number parsed to."""

    request: SmsRecipient
    to: str | None  # E.164; None when invalid
    country: str


@dataclass
class _Plan:
    """One request of a batch, as far as it is known before the database is read."""

    resource_id: str
    request: SendMessageRequest
    sender: str
    recipients: list[_Recipient]
    country_limits: dict[str, int]  # per recipient country; 0: no quota
    scopes: list[str]  # the counters this request counts in
    segment_count: int
    data_coding: int
    too_long: InvalidField | None  # answered once the sender is known to be the resource's
    timeout: int


def _parse_recipients(request: SendMessageRequest) -> list[_Recipient]:
    parsed_recipients = []
    for recipient in request.sms_recipients:
        parsed = e164_and_region(recipient.to)
        to, country = parsed if parsed is not None else (None, "")
        parsed_recipients.append(_Recipient(recipient, to, country))
    return parsed_recipients


def _plan(settings: Settings, resource_id: str, request: SendMessageRequest) -> _Plan:
    sender = sender_or_400(request.from_)
    if request.sms_send_options and request.sms_send_options.messaging_connect:
        # Not sent anywhere else than asked: the app chose a partner this gateway does not have.
        raise BadRequest(
            "Messaging Connect partners are not available on this gateway: its messages go "
            "through the operator's SMPP connections. Send without smsSendOptions.messagingConnect.",
            "smsSendOptions.messagingConnect",
            "MessagingConnectNotSupported",
        )
    recipients = _parse_recipients(request)
    country_limits = quotas.country_limits(settings, (r.country for r in recipients if r.to is not None))
    scopes = quotas.counted_scopes(settings, country_limits)
    too_long = None
    segment_count, data_coding = 1, 0
    try:
        segmented = segment_message(request.message)
        segment_count, data_coding = max(1, len(segmented.segments)), int(segmented.data_coding)
    except MessageTooLongError as exc:
        too_long = InvalidField(str(exc), "message", "MessageTooLong")
    options = request.sms_send_options
    # The report window: 2026-01-23's deliveryReportTimeoutInSeconds, else 2021-03-07's
    # validityPeriodSeconds (how long the message may be retried or its report awaited).
    timeout = (
        options and (options.delivery_report_timeout_in_seconds or options.validity_period_seconds)
    ) or settings.sms_delivery_report_timeout_seconds
    return _Plan(
        resource_id,
        request,
        sender,
        recipients,
        country_limits,
        scopes,
        segment_count,
        data_coding,
        too_long,
        timeout,
    )


def _repeatable_id(recipient: _Recipient) -> str | None:
    """The repeatability id a recipient's earlier result is looked up by (a valid one)."""
    request = recipient.request
    if (
        recipient.to is None
        or request.repeatability_request_id is None
        or _parse_first_sent(request.repeatability_first_sent) is None
    ):
        return None
    return request.repeatability_request_id


def _plan_row(message_id: str, plan: _Plan, recipient: _Recipient, now: datetime) -> dict[str, Any]:
    """The row of one accepted recipient of a planned request."""
    assert recipient.to is not None
    options = plan.request.sms_send_options
    return message_row(
        message_id,
        resource_id=plan.resource_id,
        sender=plan.sender,
        to=recipient.to,
        country=recipient.country,
        text=plan.request.message,
        segment_count=plan.segment_count,
        data_coding=plan.data_coding,
        report_timeout_seconds=plan.timeout,
        now=now,
        tag=options.tag if options else None,
        enable_delivery_report=bool(options and options.enable_delivery_report),
        validity_period_seconds=options.validity_period_seconds if options else None,
        repeatability_request_id=recipient.request.repeatability_request_id,
        repeatability_first_sent=recipient.request.repeatability_first_sent,
    )


# Reads: everything a batch is decided on ---------------------------------------------------------


class _Earlier(NamedTuple):
    """The message an earlier request stored under a repeatability id."""

    message_id: str
    to: str


@dataclass
class _Found:
    """What a batch's reads tell its requests: each (resource, sender)'s SMS capability (absent:
    not the resource's number), the (sender, recipient) pairs opted out, the quota counters
    (earlier seconds of the window, and the current second as locked), and the messages of
    repeatability ids seen within the window, by (resource, id)."""

    capabilities: dict[tuple[str, str], str | None] = field(default_factory=dict)
    opted_out: set[tuple[str, str]] = field(default_factory=set)
    earlier: dict[CounterKey, int] = field(default_factory=dict)
    current: dict[CounterKey, int] = field(default_factory=dict)
    repeated: dict[tuple[str, str], _Earlier] = field(default_factory=dict)


def _read(session: Session, plans: list[_Plan], second: int, now: datetime, window: timedelta) -> _Found:
    """Everything the batch's requests are decided on, in two to four round trips whatever
    their number."""
    scopes = sorted({(plan.resource_id, scope) for plan in plans for scope in plan.scopes})
    counter_window = None
    if scopes:
        counter_window = repository.CounterWindow(
            resources=sorted({resource for resource, _ in scopes}),
            scopes=sorted({scope for _, scope in scopes}),
            window_start=second - quotas.QUOTA_WINDOW_SECONDS,
            second=second,
        )
    lookup = repository.read_senders_optouts_counters(
        session,
        senders=sorted({plan.sender for plan in plans}),
        recipients=sorted({r.to for plan in plans for r in plan.recipients if r.to is not None}),
        window=counter_window,
    )
    found = _Found(lookup.capabilities, lookup.opted_out, lookup.earlier)
    if scopes:
        found.current = quotas.lock_current_counters(session, second, scopes)
    _read_repeated(session, plans, now, window, found)
    return found


def _read_repeated(
    session: Session, plans: list[_Plan], now: datetime, window: timedelta, found: _Found
) -> None:
    wanted = {(plan.resource_id, i) for plan in plans for i in map(_repeatable_id, plan.recipients) if i}
    if not wanted:
        return
    expired: list[str] = []
    stored = repository.find_repeatable(
        session,
        resources=sorted({resource for resource, _ in wanted}),
        request_ids=sorted({request_id for _, request_id in wanted}),
    )
    for message in stored:
        key = (message.resource_id, message.repeatability_request_id)
        if key not in wanted:
            continue
        if message.created_at > now - window:
            found.repeated[key] = _Earlier(message.id, message.to_number)
        else:
            expired.append(message.id)
    if expired:
        # An id last used before the window is forgotten (its row keeps the message, loses the
        # id), so that it can be used again.
        repository.forget_repeatability_ids(session, expired)


# Send ----------------------------------------------------------------------------------------------


def send(
    session: Session, settings: Settings, resource_id: str, request: SendMessageRequest, now: datetime
) -> SendOutcome:
    """Validate, store one ``queued`` row per accepted recipient, and answer one item per
    recipient; raise the ``AcsError`` that answers the whole request.

    A concurrent request reusing a repeatability id loses on the unique constraint; it is then
    answered again from the stored rows (retried once), so nothing is sent twice. Without
    repeatability ids no constraint can fail, so no savepoint is needed (two round trips).
    """
    if all(r.repeatability_request_id is None for r in request.sms_recipients):
        return _one(send_many(session, settings, [(resource_id, request)], now))
    try:
        with session.begin_nested():
            return _one(send_many(session, settings, [(resource_id, request)], now))
    except IntegrityError:
        return _one(send_many(session, settings, [(resource_id, request)], now))


def _one(outcomes: list[SendOutcome | AcsError]) -> SendOutcome:
    [outcome] = outcomes
    if isinstance(outcome, AcsError):
        raise outcome
    return outcome


def send_many(
    session: Session,
    settings: Settings,
    requests: list[tuple[str, SendMessageRequest]],
    now: datetime,
) -> list[SendOutcome | AcsError]:
    """``send`` for several (resource, request) at once, as if sent one after the other in this
    transaction (a request sees the repeatability ids and quota counts of those before it), with
    a handful of statements for the whole batch rather than four or five per request.

    Each request gets its outcome or the ``AcsError`` that answers it; a refused request writes
    nothing. A database error (a repeatability id that another transaction stored meanwhile, a
    deadlock) raises: the caller then sends the requests one by one, each in a savepoint.
    """
    planned: list[_Plan | AcsError] = []
    for resource_id, request in requests:
        try:
            planned.append(_plan(settings, resource_id, request))
        except AcsError as exc:
            planned.append(exc)
    plans = [plan for plan in planned if isinstance(plan, _Plan)]
    if not plans:
        return [cast(AcsError, error) for error in planned]
    second = int(now.timestamp())
    window = timedelta(hours=settings.sms_repeatability_window_hours)
    found = _read(session, plans, second, now, window)
    # The resources whose counters of this second this batch made: pruned below.
    opened = quotas.opened_resources(found.current)
    rows: list[dict[str, Any]] = []
    added: dict[CounterKey, int] = {}
    outcomes: list[SendOutcome | AcsError] = []
    for plan in planned:
        if isinstance(plan, AcsError):
            outcomes.append(plan)
            continue
        try:
            outcomes.append(_decide(settings, plan, found, now, rows, added))
        except AcsError as exc:
            outcomes.append(exc)
    if rows:
        repository.insert_messages(session, rows)
    if added:
        quotas.add_counts(session, second, added)
    # A batch that opened a resource's counters of this second drops the ones past the window
    # (about once a second for a busy resource, not on every request).
    for resource_id in opened:
        quotas.forget_old_counters(session, resource_id, second)
    return outcomes


def _decide(
    settings: Settings,
    plan: _Plan,
    found: _Found,
    now: datetime,
    rows: list[dict[str, Any]],
    added: dict[CounterKey, int],
) -> SendOutcome:
    """One request's answer against what the batch read and what the requests before it
    stored; its rows appended to ``rows`` and its counts to ``added``, unless it raises."""
    resource_id = plan.resource_id
    _check_capability(plan.sender, found.capabilities.get((resource_id, plan.sender)))
    if plan.too_long is not None:
        raise plan.too_long

    def counted(scope: str) -> int:
        """The scope's messages in the window, before this request."""
        key = (resource_id, scope)
        return found.earlier.get(key, 0) + found.current.get(key, 0) + added.get(key, 0)

    # The request as a whole, against everything the resource sent in the last minute.
    quotas.check_resource_quota(settings, counted(quotas.ALL_DESTINATIONS), len(plan.request.sms_recipients))
    # Each country's quota, recipient by recipient in request order.
    room = quotas.country_room(plan.country_limits, counted)
    items, stored = _answer_recipients(plan, found, room, now)
    # Counted and stored only now: a request refused above has written nothing.
    for row in stored:
        for scope in (quotas.ALL_DESTINATIONS, row["country_code"]):
            if scope in plan.scopes:
                added[(resource_id, scope)] = added.get((resource_id, scope), 0) + 1
        request_id = row["repeatability_request_id"]
        if request_id is not None:
            # a later request of the batch finds it as a stored earlier result
            found.repeated[(resource_id, request_id)] = _Earlier(row["id"], row["to_number"])
    rows.extend(stored)
    return SendOutcome(items, [row["id"] for row in stored])


def _answer_recipients(
    plan: _Plan, found: _Found, room: dict[str, int], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An item per recipient, and the rows of those accepted."""
    items: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []
    # Each recipient's answer by its repeatability id, for a later recipient reusing the id.
    answered: dict[str, dict[str, Any]] = {}
    for recipient in plan.recipients:
        if recipient.to is None:
            items.append(_item(recipient.request.to, 400, error="Invalid To phone number format."))
            continue
        request_id = recipient.request.repeatability_request_id
        if request_id is not None:
            if _parse_first_sent(recipient.request.repeatability_first_sent) is None:
                item = _item(
                    recipient.to,
                    400,
                    error="Request sent with Invalid DateTime value for repeatability-first-sent. "
                    "Expected is DateTime ,RFC1123 pattern.",
                )
                item["repeatabilityResult"] = "rejected"
                items.append(item)
                continue
            if (plan.resource_id, request_id) in found.repeated:
                message_id, to = found.repeated[(plan.resource_id, request_id)]
                items.append(_repeat_item(to, message_id))
                continue
            if request_id in answered:
                # Answered like a repeat of the earlier recipient: its message, or its refusal.
                first = answered[request_id]
                repeat = _repeat_item(first["to"], first["messageId"]) if first["successful"] else None
                items.append(repeat or {**first, "to": recipient.to})
                continue
        if (plan.sender, recipient.to) in found.opted_out:
            items.append(_item(recipient.to, 400, error=OPTED_OUT_MESSAGE))
            continue
        country = recipient.country
        if country in room and room[country] == 0:
            error = quotas.country_quota_message(country, plan.country_limits[country])
            item = _item(recipient.to, 429, error=error)
        else:
            if country in room:
                room[country] -= 1
            message_id = new_message_id(now)
            stored.append(_plan_row(message_id, plan, recipient, now))
            item = _item(recipient.to, 202, message_id)
            if request_id is not None:
                item["repeatabilityResult"] = "accepted"
        if request_id is not None:
            answered[request_id] = item
        items.append(item)
    return items, stored
