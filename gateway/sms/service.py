"""The SMS API's rules: send (validation, opt-outs, quotas, repeatability, queueing), opt-outs,
delivery reports; and the operator's SMPP connections and routes. No FastAPI here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import phonenumbers
from sqlalchemy import (
    BigInteger,
    CompoundSelect,
    Insert,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.core.db import one_of
from gateway.core.errors import AcsError, BadRequest, Conflict, InvalidField, NotFound
from gateway.core.settings import Settings
from gateway.events.builder import format_time, sms_delivery_report_data
from gateway.numbers.models import PurchasedNumber
from gateway.numbers.purchased import owned_number
from gateway.sms.models import SmppConnection, SmppRoute, SmsMessage, SmsOptOut, SmsSegment, SmsSendCounter
from gateway.sms.schemas import ConnectionCreate, OptOutRequest, RouteCreate, SendMessageRequest, SmsRecipient
from sms.segmentation import MessageTooLongError, segment_message

FINAL_STATES = frozenset({"delivered", "failed", "expired"})
OPTED_OUT_MESSAGE = "The recipient has opted out of messages from this sender (it replied STOP)."


@lru_cache(maxsize=16384)
def e164_and_region(raw: str) -> tuple[str, str] | None:
    """E.164 and region code of a valid number written in international form, else None.

    Parsing is a good part of a send's CPU and depends on the text alone, so it is cached
    (the senders of a busy resource are few)."""
    text = raw.strip()
    if not text.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.region_code_for_number(parsed) or ""


def normalise_number(raw: str) -> str | None:
    """E.164 of a valid number written in international form, else None."""
    parsed = e164_and_region(raw)
    return None if parsed is None else parsed[0]


def region_of(e164: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def new_message_id(now: datetime) -> str:
    return f"Outgoing_{now.strftime('%Y%m%d%H%M%S')}{uuid.uuid4()}"


def _sms_capable(capability: str, direction: str) -> bool:
    return direction in capability.split("+")


def _sender_or_400(raw: str) -> str:
    sender = normalise_number(raw)
    if sender is None:
        raise InvalidField(f"Invalid From phone number format: '{raw}'.", "from", "InvalidFromPhoneNumber")
    return sender


def _check_capability(sender: str, sms_capability: str | None) -> None:
    """``sms_capability`` is the number's SMS capability, None when the resource does not own it."""
    if sms_capability is None:
        raise BadRequest(
            f"The From phone number {sender} is not a number this resource has purchased.",
            "from",
            "InvalidFromPhoneNumber",
        )
    if not _sms_capable(sms_capability, "outbound"):
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


def _parse_first_sent(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None


# Quotas: per-second counters ---------------------------------------------------------------------

# The counter scope of all of a resource's messages; the others are region codes.
ALL_DESTINATIONS = "*"
QUOTA_WINDOW_SECONDS = 60


# The statements of a send are built once, with bind parameters: building a SQLAlchemy statement
# costs more CPU than SQLite takes to run it, and a prebuilt one also keeps its cache key.
_counters = cast(Table, SmsSendCounter.__table__)
_messages = cast(Table, SmsMessage.__table__)
_numbers = cast(Table, PurchasedNumber.__table__)
_optouts = cast(Table, SmsOptOut.__table__)


def _counter_upsert(dialect: str) -> Insert:
    upsert = pg_insert(_counters) if dialect == "postgresql" else sqlite_insert(_counters)
    return upsert.on_conflict_do_update(
        index_elements=[_counters.c.resource_id, _counters.c.scope, _counters.c.second],
        set_={"sent": _counters.c.sent + upsert.excluded.sent},
    ).returning(_counters.c.resource_id, _counters.c.scope, _counters.c.sent)


_COUNTER_UPSERTS = {dialect: _counter_upsert(dialect) for dialect in ("postgresql", "sqlite")}

_FORGET_OLD_COUNTERS = delete(_counters).where(
    _counters.c.resource_id == bindparam("resource_id"), _counters.c.second <= bindparam("oldest")
)


# a counter's key: (resource id, scope)
CounterKey = tuple[str, str]


def _upsert_counters(session: Session, second: int, added: dict[CounterKey, int]) -> dict[CounterKey, int]:
    """Add ``added[(resource, scope)]`` messages to the current second's counters; their new
    values, by (resource, scope). Adding 0 locks a counter and reads it.

    Rows are written in (resource, scope) order so two transactions always lock them in the same
    order (no deadlock); each lock is held until the commit, which serialises the counting of a
    resource's concurrent requests in every API process."""
    connection = session.connection()
    rows = [
        {"resource_id": resource_id, "scope": scope, "second": second, "sent": count}
        for (resource_id, scope), count in sorted(added.items())
    ]
    # Rows as parameters (not .values()): several rows still go as one INSERT (insertmanyvalues).
    result = connection.execute(_COUNTER_UPSERTS[connection.dialect.name], rows)
    return {(row.resource_id, row.scope): row.sent for row in result}


def count_sent(session: Session, resource_id: str, country: str, now: datetime) -> None:
    """Count one message stored outside POST /sms (an automatic reply) towards the quotas."""
    added = {(resource_id, ALL_DESTINATIONS): 1, (resource_id, country): 1}
    _upsert_counters(session, int(now.timestamp()), added)


def _forget_old_counters(session: Session, resource_id: str, second: int) -> None:
    session.connection().execute(
        _FORGET_OLD_COUNTERS, {"resource_id": resource_id, "oldest": second - QUOTA_WINDOW_SECONDS}
    )


# Send ---------------------------------------------------------------------------------------------


@dataclass
class SendOutcome:
    items: list[dict[str, Any]]
    queued: list[str]


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


def _plan(settings: Settings, resource_id: str, request: SendMessageRequest) -> _Plan:
    sender = _sender_or_400(request.from_)
    if request.sms_send_options and request.sms_send_options.messaging_connect:
        # Not sent anywhere else than asked: the app chose a partner this gateway does not have.
        raise BadRequest(
            "Messaging Connect partners are not available on this gateway: its messages go "
            "through the operator's SMPP connections. Send without smsSendOptions.messagingConnect.",
            "smsSendOptions.messagingConnect",
            "MessagingConnectNotSupported",
        )
    recipients = _parse_recipients(request)
    country_limits = {
        r.country: settings.sms_country_quota(r.country) for r in recipients if r.to is not None
    }
    scopes = [ALL_DESTINATIONS] if settings.sms_quota_per_resource_per_minute else []
    scopes += sorted(country for country, limit in country_limits.items() if limit)
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


@dataclass
class _Found:
    """What a batch's reads tell its requests: each (resource, sender)'s SMS capability (absent:
    not the resource's number), the (sender, recipient) pairs opted out, the quota counters
    (earlier seconds of the window, and the current second as locked), and the messages of
    repeatability ids seen within the window, by (resource, id)."""

    capabilities: dict[tuple[str, str], str | None] = field(default_factory=dict)
    opted_out: set[tuple[str, str]] = field(default_factory=set)
    earlier: dict[tuple[str, str], int] = field(default_factory=dict)
    current: dict[tuple[str, str], int] = field(default_factory=dict)
    repeated: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)


def _lookup_statement(*, with_quotas: bool, postgres: bool) -> CompoundSelect[*tuple[Any, ...]]:
    """The senders, the opt-outs and the quota counters' earlier seconds in one round trip.

    Each branch of the UNION ALL tags its rows with what they are; ``a``, ``b`` and ``c`` are
    (resource, sender, capability), (sender, recipient, '') or (resource, scope, ''), and
    ``earlier`` a count (0 where it means nothing). Each list is one array parameter on
    PostgreSQL (``one_of``): its SQL stays the same whatever the batch's size."""
    zero = literal(0, Integer)
    empty = literal("", String)
    branches = [
        select(
            literal("sender").label("kind"),
            _numbers.c.resource_id,
            _numbers.c.phone_number,
            _numbers.c.sms,
            zero,
        ).where(one_of(_numbers.c.phone_number, "senders", postgres=postgres)),
        select(literal("opted_out"), _optouts.c.from_number, _optouts.c.to_number, empty, zero).where(
            one_of(_optouts.c.from_number, "senders", postgres=postgres),
            one_of(_optouts.c.to_number, "recipients", postgres=postgres),
        ),
    ]
    if with_quotas:
        branches.append(
            select(
                literal("quota"),
                _counters.c.resource_id,
                _counters.c.scope,
                empty,
                func.sum(_counters.c.sent),
            )
            .where(
                one_of(_counters.c.resource_id, "resources", postgres=postgres),
                one_of(_counters.c.scope, "scopes", postgres=postgres),
                _counters.c.second > bindparam("window_start", type_=BigInteger),
                _counters.c.second < bindparam("second", type_=BigInteger),
            )
            .group_by(_counters.c.resource_id, _counters.c.scope)
        )
    return union_all(*branches)


# by (with quotas, on PostgreSQL)
_LOOKUPS = {
    (quotas, postgres): _lookup_statement(with_quotas=quotas, postgres=postgres)
    for quotas in (False, True)
    for postgres in (False, True)
}
# by on PostgreSQL
_FIND_REPEATED = {
    postgres: select(
        _messages.c.id,
        _messages.c.to_number,
        _messages.c.resource_id,
        _messages.c.repeatability_request_id,
        _messages.c.created_at,
    ).where(
        one_of(_messages.c.resource_id, "resources", postgres=postgres),
        one_of(_messages.c.repeatability_request_id, "request_ids", postgres=postgres),
    )
    for postgres in (False, True)
}
_FORGET_REPEATABILITY_IDS = (
    update(_messages)
    .where(_messages.c.id.in_(bindparam("ids", expanding=True)))
    .values(repeatability_request_id=None)
)
_INSERT_MESSAGES = insert(_messages)


def _read(session: Session, plans: list[_Plan], second: int, now: datetime, window: timedelta) -> _Found:
    """Everything the batch's requests are decided on, in two to four round trips whatever
    their number."""
    found = _Found()
    scopes = sorted({(plan.resource_id, scope) for plan in plans for scope in plan.scopes})
    _read_senders_and_quotas(session, plans, scopes, second, found)
    if scopes:
        # The current second's counters, locked (a zero added) until the commit: that
        # serialises the counting of a resource's concurrent requests in every process, and
        # lets the batch count its own requests one after the other in memory. One statement,
        # in (resource, scope) order: two transactions never wait for each other in a cycle.
        found.current = _upsert_counters(session, second, dict.fromkeys(scopes, 0))
    _read_repeated(session, plans, now, window, found)
    return found


def _read_senders_and_quotas(
    session: Session, plans: list[_Plan], scopes: list[tuple[str, str]], second: int, found: _Found
) -> None:
    parameters: dict[str, Any] = {
        "senders": sorted({plan.sender for plan in plans}),
        "recipients": sorted({r.to for plan in plans for r in plan.recipients if r.to is not None}),
    }
    if scopes:
        parameters |= {
            "resources": sorted({resource for resource, _ in scopes}),
            "scopes": sorted({scope for _, scope in scopes}),
            "second": second,
            "window_start": second - QUOTA_WINDOW_SECONDS,
        }
    connection = session.connection()
    statement = _LOOKUPS[(bool(scopes), connection.dialect.name == "postgresql")]
    for kind, a, b, c, earlier in connection.execute(statement, parameters):
        if kind == "sender":
            found.capabilities[(a, b)] = c
        elif kind == "opted_out":
            found.opted_out.add((a, b))
        else:
            found.earlier[(a, b)] = int(earlier or 0)


def _read_repeated(
    session: Session, plans: list[_Plan], now: datetime, window: timedelta, found: _Found
) -> None:
    wanted = {(plan.resource_id, i) for plan in plans for i in map(_repeatable_id, plan.recipients) if i}
    if not wanted:
        return
    connection = session.connection()
    expired: list[str] = []
    parameters = {
        "resources": sorted({resource for resource, _ in wanted}),
        "request_ids": sorted({request_id for _, request_id in wanted}),
    }
    statement = _FIND_REPEATED[connection.dialect.name == "postgresql"]
    for message_id, to, resource_id, request_id, created_at in connection.execute(statement, parameters):
        if (resource_id, request_id) not in wanted:
            continue
        if created_at > now - window:
            found.repeated[(resource_id, request_id)] = (message_id, to)
        else:
            expired.append(message_id)
    if expired:
        # An id last used before the window is forgotten (its row keeps the message, loses the
        # id), so that it can be used again.
        connection.execute(_FORGET_REPEATABILITY_IDS, {"ids": expired})


def _message_row(message_id: str, plan: _Plan, recipient: _Recipient, now: datetime) -> dict[str, Any]:
    """The ``sms_messages`` row of one accepted recipient: a ``queued`` send job."""
    options = plan.request.sms_send_options
    return {
        "id": message_id,
        "resource_id": plan.resource_id,
        "from_number": plan.sender,
        "to_number": recipient.to,
        "country_code": recipient.country,
        "text": plan.request.message,
        "segment_count": plan.segment_count,
        "data_coding": plan.data_coding,
        "tag": options.tag if options else None,
        "enable_delivery_report": bool(options and options.enable_delivery_report),
        "delivery_report_timeout_seconds": plan.timeout,
        "validity_period_seconds": options.validity_period_seconds if options else None,
        "repeatability_request_id": recipient.request.repeatability_request_id,
        "repeatability_first_sent": recipient.request.repeatability_first_sent,
        "state": "queued",
        "next_attempt_at": now,
        "created_at": now,
    }


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
    # A resource's first counter of this second (its first scope) just made: pruned below.
    first_scopes: dict[str, str] = {}
    for resource_id, scope in sorted(found.current):
        first_scopes.setdefault(resource_id, scope)
    opened = [
        resource_id for resource_id, scope in first_scopes.items() if found.current[(resource_id, scope)] == 0
    ]
    rows: list[dict[str, Any]] = []
    added: dict[tuple[str, str], int] = {}
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
        session.connection().execute(_INSERT_MESSAGES, rows)
    if added:
        _upsert_counters(session, second, added)
    # A batch that opened a resource's counters of this second drops the ones past the window
    # (about once a second for a busy resource, not on every request).
    for resource_id in opened:
        _forget_old_counters(session, resource_id, second)
    return outcomes


def _decide(
    settings: Settings,
    plan: _Plan,
    found: _Found,
    now: datetime,
    rows: list[dict[str, Any]],
    added: dict[tuple[str, str], int],
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
    resource_limit = settings.sms_quota_per_resource_per_minute
    if resource_limit and counted(ALL_DESTINATIONS) + len(plan.request.sms_recipients) > resource_limit:
        raise AcsError(
            429,
            "TooManyRequests",
            f"This resource may send {resource_limit} messages a minute; try again later.",
            headers={"Retry-After": "60"},
        )
    # Each country's quota, recipient by recipient in request order.
    room = {
        country: max(0, limit - counted(country)) for country, limit in plan.country_limits.items() if limit
    }
    items, stored = _answer_recipients(plan, found, room, now)
    # Counted and stored only now: a request refused above has written nothing.
    for row in stored:
        for scope in (ALL_DESTINATIONS, row["country_code"]):
            if scope in plan.scopes:
                added[(resource_id, scope)] = added.get((resource_id, scope), 0) + 1
        request_id = row["repeatability_request_id"]
        if request_id is not None:
            # a later request of the batch finds it as a stored earlier result
            found.repeated[(resource_id, request_id)] = (row["id"], row["to_number"])
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
            item = _item(
                recipient.to,
                429,
                error=f"Too many requests: at most {plan.country_limits[country]} messages a minute "
                f"to {country or 'this destination'} from this resource.",
            )
        else:
            if country in room:
                room[country] -= 1
            message_id = new_message_id(now)
            stored.append(_message_row(message_id, plan, recipient, now))
            item = _item(recipient.to, 202, message_id)
            if request_id is not None:
                item["repeatabilityResult"] = "accepted"
        if request_id is not None:
            answered[request_id] = item
        items.append(item)
    return items, stored


def _repeat_item(to: str, message_id: str) -> dict[str, Any]:
    item = _item(to, 202, message_id)
    item["repeatabilityResult"] = "accepted"
    return item


def _parse_recipients(request: SendMessageRequest) -> list[_Recipient]:
    parsed_recipients = []
    for recipient in request.sms_recipients:
        parsed = e164_and_region(recipient.to)
        to, country = parsed if parsed is not None else (None, "")
        parsed_recipients.append(_Recipient(recipient, to, country))
    return parsed_recipients


# Opt-outs -------------------------------------------------------------------------------------------


def _optout_sender(session: Session, resource_id: str, raw: str) -> str:
    sender = _sender_or_400(raw)
    if owned_number(session, resource_id, sender) is None:
        raise BadRequest(
            f"The From phone number '{raw}' is not a number this resource has purchased.",
            "from",
            "InvalidFromPhoneNumber",
        )
    return sender


def optouts(session: Session, resource_id: str, request: OptOutRequest, action: str) -> list[dict[str, Any]]:
    """``action`` is add, remove or check; one item per recipient."""
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
        existing = session.get(SmsOptOut, (sender, to))
        if action == "add":
            if existing is None:
                set_opt_out(session, sender, to, opted_out=True)
            items.append({"to": to, "httpStatusCode": 200})
        elif action == "remove":
            if existing is not None:
                set_opt_out(session, sender, to, opted_out=False)
            items.append({"to": to, "httpStatusCode": 200})
        else:
            items.append({"to": to, "httpStatusCode": 200, "isOptedOut": existing is not None})
    return items


def set_opt_out(session: Session, sender: str, recipient: str, *, opted_out: bool) -> None:
    if opted_out:
        if session.get(SmsOptOut, (sender, recipient)) is None:
            session.add(SmsOptOut(from_number=sender, to_number=recipient))
            session.flush()
    else:
        session.execute(
            delete(SmsOptOut).where(SmsOptOut.from_number == sender, SmsOptOut.to_number == recipient)
        )


# Delivery reports -----------------------------------------------------------------------------------


def report_data(message: SmsMessage) -> dict[str, Any]:
    """The ACS delivery report of a finished message (event data and GET body alike)."""
    assert message.delivery_status is not None
    assert message.report_received_at is not None
    return report_of(
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


def report_of(
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
    """The report's data: one delivery attempt, at the submit time (the report's, if never submitted)."""
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


def delivery_report(session: Session, resource_id: str, message_id: str) -> dict[str, Any]:
    message = session.get(SmsMessage, message_id)
    if message is None or message.resource_id != resource_id or message.delivery_status is None:
        raise NotFound(f"No delivery report for message '{message_id}'.", "outgoingMessageId")
    return report_data(message)


def message_json(message: SmsMessage, segments: list[SmsSegment]) -> dict[str, Any]:
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
    by_state = dict(session.execute(select(SmsMessage.state, func.count()).group_by(SmsMessage.state)).all())
    duplicates = session.scalar(select(func.coalesce(func.sum(SmsMessage.possible_duplicates), 0))) or 0
    return {"messages": {str(k): int(v) for k, v in by_state.items()}, "possibleDuplicates": int(duplicates)}


# Operator: SMPP connections and routes --------------------------------------------------------------


def connection_json(connection: SmppConnection) -> dict[str, Any]:
    return {
        "id": connection.id,
        "name": connection.name,
        "host": connection.host,
        "port": connection.port,
        "tls": connection.tls,
        "systemId": connection.system_id,
        "systemType": connection.system_type,
        "bindMode": connection.bind_mode,
        "sourceTon": connection.source_ton,
        "sourceNpi": connection.source_npi,
        "destTon": connection.dest_ton,
        "destNpi": connection.dest_npi,
        "windowSize": connection.window_size,
        "maxSubmitsPerSecond": connection.max_submits_per_second,
        "enquireLinkInterval": connection.enquire_link_interval,
        "reconnectBackoffInitial": connection.reconnect_backoff_initial,
        "reconnectBackoffMax": connection.reconnect_backoff_max,
        "defaultDataCoding": connection.default_data_coding,
        "respIdFormat": connection.resp_id_format,
        "receiptIdFormat": connection.receipt_id_format,
        "enabled": connection.enabled,
    }


def add_connection(session: Session, spec: ConnectionCreate) -> SmppConnection:
    if session.scalar(select(SmppConnection).where(SmppConnection.name == spec.name)) is not None:
        raise Conflict(f"An SMPP connection named '{spec.name}' exists already.", "name")
    connection = SmppConnection(**spec.model_dump(by_alias=False))
    session.add(connection)
    session.flush()
    return connection


def list_connections(session: Session) -> list[SmppConnection]:
    return list(session.scalars(select(SmppConnection).order_by(SmppConnection.name)))


def get_connection(session: Session, name: str) -> SmppConnection:
    connection = session.scalar(select(SmppConnection).where(SmppConnection.name == name))
    if connection is None:
        raise NotFound(f"No SMPP connection named '{name}'.", "name")
    return connection


def delete_connection(session: Session, name: str) -> None:
    session.delete(get_connection(session, name))


def add_route(session: Session, spec: RouteCreate) -> SmppRoute:
    connection = get_connection(session, spec.connection)
    existing = list(session.scalars(select(SmppRoute).where(SmppRoute.prefix == spec.prefix)))
    if any(r.connection_id == connection.id for r in existing):
        raise Conflict(f"The route {spec.prefix} -> {spec.connection} exists already.", "prefix")
    priority = spec.priority if spec.priority is not None else len(existing)
    route = SmppRoute(prefix=spec.prefix, connection_id=connection.id, priority=priority)
    session.add(route)
    session.flush()
    return route


def list_routes(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(SmppRoute, SmppConnection.name)
        .join(SmppConnection, SmppConnection.id == SmppRoute.connection_id)
        .order_by(SmppRoute.prefix, SmppRoute.priority)
    ).all()
    return [{"prefix": r.prefix, "connection": name, "priority": r.priority} for r, name in rows]


def apply_config_file(session: Session, path: Path) -> tuple[int, int]:
    """Create or update the connections and add the routes of a TOML file (``trunkline up``'s
    carrier config): ``[[connections]]`` tables with ConnectionCreate's fields (snake_case) and
    ``[[routes]]`` tables with ``prefix`` and ``connection``. Returns (connections, routes) applied."""
    import tomllib

    from pydantic import ValidationError

    try:
        data = tomllib.loads(path.read_text())
        connections = [ConnectionCreate.model_validate(item) for item in data.get("connections", [])]
        routes = [RouteCreate.model_validate(item) for item in data.get("routes", [])]
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as exc:
        raise BadRequest(f"{path}: {exc}") from exc
    for spec in connections:
        existing = session.scalar(select(SmppConnection).where(SmppConnection.name == spec.name))
        if existing is None:
            add_connection(session, spec)
        else:
            for key, value in spec.model_dump(by_alias=False).items():
                setattr(existing, key, value)
    session.flush()
    added = 0
    for route in routes:
        connection = get_connection(session, route.connection)
        known = session.scalar(
            select(SmppRoute).where(
                SmppRoute.prefix == route.prefix, SmppRoute.connection_id == connection.id
            )
        )
        if known is None:
            add_route(session, route)
            added += 1
    return len(connections), added
