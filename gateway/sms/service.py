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
    case,
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

from gateway.core.errors import AcsError, BadRequest, Conflict, InvalidField, NotFound
from gateway.core.settings import Settings
from gateway.events.builder import format_time, sms_delivery_report_data
from gateway.numbers.models import PurchasedNumber
from gateway.numbers.service import owned_number
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


@dataclass
class _QuotaUse:
    """Messages counted in one scope: the window's earlier seconds, and the current one."""

    earlier: int = 0
    current: int = 0


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
    ).returning(_counters.c.scope, _counters.c.sent)


_COUNTER_UPSERTS = {dialect: _counter_upsert(dialect) for dialect in ("postgresql", "sqlite")}

_FORGET_OLD_COUNTERS = delete(_counters).where(
    _counters.c.resource_id == bindparam("resource_id"), _counters.c.second <= bindparam("oldest")
)


def _upsert_counters(
    session: Session, resource_id: str, second: int, added: dict[str, int]
) -> dict[str, int]:
    """Add ``added[scope]`` messages to the current second's counters; their new values.

    Rows are written in scope order so two transactions always lock them in the same order
    (no deadlock); each lock is held until the commit, which serialises the counting of
    concurrent requests of one resource in every API process."""
    connection = session.connection()
    rows = [
        {"resource_id": resource_id, "scope": scope, "second": second, "sent": count}
        for scope, count in sorted(added.items())
    ]
    # Rows as parameters (not .values()): several rows still go as one INSERT (insertmanyvalues).
    result = connection.execute(_COUNTER_UPSERTS[connection.dialect.name], rows)
    return {row.scope: row.sent for row in result}


def count_sent(session: Session, resource_id: str, country: str, now: datetime) -> None:
    """Count one message stored outside POST /sms (an automatic reply) towards the quotas."""
    _upsert_counters(session, resource_id, int(now.timestamp()), {ALL_DESTINATIONS: 1, country: 1})


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
class _SameAs:
    """A recipient whose repeatability id an earlier recipient of the same request used."""

    index: int  # that recipient's candidate index
    to: str


@dataclass
class _Lookup:
    """What one read tells a send: the sender's SMS capability (None: not this resource's
    number), which recipients opted out of it, and the quota use of each counter scope."""

    sender_capability: str | None = None
    opted_out: set[str] = field(default_factory=set)
    quota: dict[str, _QuotaUse] = field(default_factory=dict)


def _lookup_statement(*, with_quotas: bool) -> CompoundSelect[*tuple[Any, ...]]:
    """The sender check, the opt-outs and the quota counters in one round trip.

    Each branch of the UNION ALL tags its rows with what they are; ``number`` is a number or a
    counter scope, ``earlier`` and ``current`` are counts (0 where they mean nothing)."""
    zero = literal(0, Integer)
    sender = bindparam("sender", type_=String)
    resource_id = bindparam("resource_id", type_=String)
    branches = [
        select(literal("sender").label("kind"), _numbers.c.sms.label("number"), zero, zero).where(
            _numbers.c.phone_number == sender, _numbers.c.resource_id == resource_id
        ),
        select(literal("opted_out"), _optouts.c.to_number, zero, zero).where(
            _optouts.c.from_number == sender,
            _optouts.c.to_number.in_(bindparam("recipients", expanding=True)),
        ),
    ]
    if with_quotas:
        second = bindparam("second", type_=BigInteger)
        branches.append(
            select(
                literal("quota"),
                _counters.c.scope,
                func.sum(case((_counters.c.second < second, _counters.c.sent), else_=0)),
                func.sum(case((_counters.c.second == second, _counters.c.sent), else_=0)),
            )
            .where(
                _counters.c.resource_id == resource_id,
                _counters.c.scope.in_(bindparam("scopes", expanding=True)),
                _counters.c.second > bindparam("window_start", type_=BigInteger),
            )
            .group_by(_counters.c.scope)
        )
    return union_all(*branches)


_LOOKUP = _lookup_statement(with_quotas=False)
_LOOKUP_WITH_QUOTAS = _lookup_statement(with_quotas=True)


def _lookup(
    session: Session, resource_id: str, sender: str, recipients: list[str], scopes: list[str], second: int
) -> _Lookup:
    parameters: dict[str, Any] = {"sender": sender, "resource_id": resource_id, "recipients": recipients}
    if scopes:
        parameters |= {"scopes": scopes, "second": second, "window_start": second - QUOTA_WINDOW_SECONDS}
    found = _Lookup()
    for kind, number, earlier, current in session.connection().execute(
        _LOOKUP_WITH_QUOTAS if scopes else _LOOKUP, parameters
    ):
        if kind == "sender":
            found.sender_capability = number
        elif kind == "opted_out":
            found.opted_out.add(number)
        else:
            found.quota[number] = _QuotaUse(int(earlier or 0), int(current or 0))
    return found


def _message_row(
    message_id: str,
    resource_id: str,
    sender: str,
    recipient: _Recipient,
    request: SendMessageRequest,
    segment_count: int,
    data_coding: int,
    timeout: int,
    now: datetime,
) -> dict[str, Any]:
    """The ``sms_messages`` row of one accepted recipient: a ``queued`` send job."""
    options = request.sms_send_options
    return {
        "id": message_id,
        "resource_id": resource_id,
        "from_number": sender,
        "to_number": recipient.to,
        "country_code": recipient.country,
        "text": request.message,
        "segment_count": segment_count,
        "data_coding": data_coding,
        "tag": options.tag if options else None,
        "enable_delivery_report": bool(options and options.enable_delivery_report),
        "delivery_report_timeout_seconds": timeout,
        "repeatability_request_id": recipient.request.repeatability_request_id,
        "repeatability_first_sent": recipient.request.repeatability_first_sent,
        "state": "queued",
        "next_attempt_at": now,
        "created_at": now,
    }


def send(
    session: Session,
    settings: Settings,
    resource_id: str,
    request: SendMessageRequest,
    now: datetime,
    *,
    savepoint: bool = True,
) -> SendOutcome:
    """Validate, store one ``queued`` row per accepted recipient, and answer one item per recipient.

    A concurrent request reusing a repeatability id loses on the unique constraint; it is then
    answered again from the stored rows (the caller retries once), so nothing is sent twice.
    Without repeatability ids no constraint can fail, so no savepoint is needed (two round trips).
    ``savepoint=False``: the caller handles that IntegrityError itself (its transaction is lost:
    the admission stores its batch again, a savepoint per call).
    """
    if not savepoint or all(r.repeatability_request_id is None for r in request.sms_recipients):
        return _send(session, settings, resource_id, request, now)
    try:
        with session.begin_nested():
            return _send(session, settings, resource_id, request, now)
    except IntegrityError:
        return _send(session, settings, resource_id, request, now)


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


_FIND_REPEATED = select(
    _messages.c.id, _messages.c.to_number, _messages.c.repeatability_request_id, _messages.c.created_at
).where(
    _messages.c.resource_id == bindparam("resource_id"),
    _messages.c.repeatability_request_id.in_(bindparam("request_ids", expanding=True)),
)
_FORGET_REPEATABILITY_IDS = (
    update(_messages)
    .where(_messages.c.id.in_(bindparam("ids", expanding=True)))
    .values(repeatability_request_id=None)
)
_INSERT_MESSAGES = insert(_messages)
_DELETE_MESSAGES = delete(_messages).where(_messages.c.id.in_(bindparam("ids", expanding=True)))


def _repeated(
    session: Session, resource_id: str, recipients: list[_Recipient], now: datetime, window: timedelta
) -> dict[str, tuple[str, str]]:
    """(message id, recipient) answered again for each repeatability id seen within the window.

    An id last used before the window is forgotten (its row keeps the message, loses the id)."""
    request_ids = [
        r.request.repeatability_request_id
        for r in recipients
        if r.to is not None
        and r.request.repeatability_request_id is not None
        and _parse_first_sent(r.request.repeatability_first_sent) is not None
    ]
    if not request_ids:
        return {}
    repeated: dict[str, tuple[str, str]] = {}
    expired: list[str] = []
    for message_id, to, request_id, created_at in session.connection().execute(
        _FIND_REPEATED, {"resource_id": resource_id, "request_ids": request_ids}
    ):
        if request_id is not None and created_at > now - window:
            repeated[request_id] = (message_id, to)
        else:
            expired.append(message_id)
    if expired:
        session.connection().execute(_FORGET_REPEATABILITY_IDS, {"ids": expired})
    return repeated


def _send(  # noqa: PLR0912, PLR0915 - the spec's per-recipient rules in one place
    session: Session, settings: Settings, resource_id: str, request: SendMessageRequest, now: datetime
) -> SendOutcome:
    sender = _sender_or_400(request.from_)
    recipients = _parse_recipients(request)
    second = int(now.timestamp())
    resource_limit = settings.sms_quota_per_resource_per_minute
    country_limits = {
        r.country: settings.sms_country_quota(r.country) for r in recipients if r.to is not None
    }
    scopes = [ALL_DESTINATIONS] if resource_limit else []
    scopes += sorted(country for country, limit in country_limits.items() if limit)
    found = _lookup(
        session, resource_id, sender, [r.to for r in recipients if r.to is not None], scopes, second
    )
    _check_capability(sender, found.sender_capability)
    options = request.sms_send_options
    try:
        segmented = segment_message(request.message)
    except MessageTooLongError as exc:
        raise InvalidField(str(exc), "message", "MessageTooLong") from exc
    segments = max(1, len(segmented.segments))
    timeout = (
        options.delivery_report_timeout_in_seconds
        if options and options.delivery_report_timeout_in_seconds
        else settings.sms_delivery_report_timeout_seconds
    )
    repeated = _repeated(
        session, resource_id, recipients, now, timedelta(hours=settings.sms_repeatability_window_hours)
    )

    # One entry per recipient, in order: a finished item, the index of a candidate row, or the
    # candidate whose repeatability id an earlier recipient of this request already used.
    answers: list[dict[str, Any] | int | _SameAs] = []
    candidates: list[_Recipient] = []
    candidate_of_id: dict[str, int] = {}
    for recipient in recipients:
        if recipient.to is None:
            answers.append(_item(recipient.request.to, 400, error="Invalid To phone number format."))
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
                answers.append(item)
                continue
            if request_id in repeated:
                message_id, to = repeated[request_id]
                answers.append(_repeat_item(to, message_id))
                continue
            if request_id in candidate_of_id:
                answers.append(_SameAs(candidate_of_id[request_id], recipient.to))
                continue
        if recipient.to in found.opted_out:
            answers.append(_item(recipient.to, 400, error=OPTED_OUT_MESSAGE))
            continue
        if request_id is not None:
            candidate_of_id[request_id] = len(candidates)
        answers.append(len(candidates))
        candidates.append(recipient)

    # Every candidate is stored first and the counters bumped last, so the counter rows' locks,
    # which serialise a resource's concurrent requests, are held for the upsert and the commit
    # only. A recipient refused below is deleted again (rare: only past a country's quota).
    message_ids = [new_message_id(now) for _ in candidates]
    if candidates:
        session.connection().execute(
            _INSERT_MESSAGES,
            [
                _message_row(
                    message_id,
                    resource_id,
                    sender,
                    recipient,
                    request,
                    segments,
                    int(segmented.data_coding),
                    timeout,
                    now,
                )
                for message_id, recipient in zip(message_ids, candidates, strict=True)
            ],
        )
    added: dict[str, int] = {}
    for recipient in candidates:
        for scope in (ALL_DESTINATIONS, recipient.country):
            if scope in scopes:
                added[scope] = added.get(scope, 0) + 1
    now_counted = _upsert_counters(session, resource_id, second, added) if added else {}

    # The request as a whole, against everything the resource sent in the last minute.
    if resource_limit:
        use = found.quota.get(ALL_DESTINATIONS, _QuotaUse())
        added_here = added.get(ALL_DESTINATIONS, 0)
        before = now_counted.get(ALL_DESTINATIONS, use.current + added_here) - added_here
        if use.earlier + before + len(request.sms_recipients) > resource_limit:
            raise AcsError(
                429,
                "TooManyRequests",
                f"This resource may send {resource_limit} messages a minute; try again later.",
                headers={"Retry-After": "60"},
            )

    # Each country's quota, recipient by recipient in request order.
    room: dict[str, int] = {}
    for country, limit in country_limits.items():
        if country in added:
            use = found.quota.get(country, _QuotaUse())
            before = now_counted[country] - added[country]
            room[country] = max(0, limit - use.earlier - before)
    over_quota: dict[str, int] = {}
    refused_ids: list[str] = []
    items: list[dict[str, Any]] = []
    candidate_items: dict[int, dict[str, Any]] = {}
    queued: list[str] = []
    for answer in answers:
        if isinstance(answer, dict):
            items.append(answer)
            continue
        if isinstance(answer, _SameAs):
            # Answered like a repeat of the earlier recipient: its message, or its refusal.
            first = candidate_items[answer.index]
            if first["successful"]:
                items.append(_repeat_item(first["to"], first["messageId"]))
            else:
                items.append({**first, "to": answer.to})
            continue
        recipient = candidates[answer]
        country = recipient.country
        if country in room:
            if room[country] == 0:
                over_quota[country] = over_quota.get(country, 0) + 1
                refused_ids.append(message_ids[answer])
                candidate_items[answer] = _item(
                    recipient.to or "",
                    429,
                    error=f"Too many requests: at most {country_limits[country]} messages a minute "
                    f"to {country or 'this destination'} from this resource.",
                )
                items.append(candidate_items[answer])
                continue
            room[country] -= 1
        queued.append(message_ids[answer])
        item = _item(recipient.to or "", 202, message_ids[answer])
        if recipient.request.repeatability_request_id is not None:
            item["repeatabilityResult"] = "accepted"
        candidate_items[answer] = item
        items.append(item)
    if over_quota:
        session.connection().execute(_DELETE_MESSAGES, {"ids": refused_ids})
        uncounted = {country: -count for country, count in over_quota.items()}
        if ALL_DESTINATIONS in added:
            uncounted[ALL_DESTINATIONS] = -sum(over_quota.values())
        _upsert_counters(session, resource_id, second, uncounted)
    if added:
        first_scope = min(added)
        if now_counted[first_scope] == added[first_scope]:
            # This request opened the resource's counters of this second: drop the ones past
            # the window (about once a second for a busy resource, not on every request).
            _forget_old_counters(session, resource_id, second)
    return SendOutcome(items, queued)


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
