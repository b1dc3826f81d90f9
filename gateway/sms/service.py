"""The SMS API's rules: send (validation, opt-outs, quotas, repeatability, queueing), opt-outs,
delivery reports; and the operator's SMPP connections and routes. No FastAPI here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.core.errors import AcsError, BadRequest, Conflict, NotFound
from gateway.core.settings import Settings
from gateway.events.builder import format_time, sms_delivery_report_data
from gateway.numbers.service import owned_number
from gateway.sms.models import SmppConnection, SmppRoute, SmsMessage, SmsOptOut, SmsSegment
from gateway.sms.schemas import ConnectionCreate, OptOutRequest, RouteCreate, SendMessageRequest
from sms.segmentation import MessageTooLongError, segment_message

FINAL_STATES = frozenset({"delivered", "failed", "expired"})
OPTED_OUT_MESSAGE = "The recipient has opted out of messages from this sender (it replied STOP)."


def normalise_number(raw: str) -> str | None:
    """E.164 of a valid number written in international form, else None."""
    text = raw.strip()
    if not text.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def region_of(e164: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def new_message_id(now: datetime) -> str:
    return f"Outgoing_{now.strftime('%Y%m%d%H%M%S')}{uuid.uuid4()}"


def _sms_capable(capability: str, direction: str) -> bool:
    return direction in capability.split("+")


def check_sender(session: Session, resource_id: str, raw: str) -> str:
    sender = normalise_number(raw)
    if sender is None:
        raise BadRequest(f"Invalid From phone number format: '{raw}'.", "from", "InvalidFromPhoneNumber")
    number = owned_number(session, resource_id, sender)
    if number is None:
        raise BadRequest(
            f"The From phone number {sender} is not a number this resource has purchased.",
            "from",
            "InvalidFromPhoneNumber",
        )
    if not _sms_capable(number.sms, "outbound"):
        raise BadRequest(
            f"The From phone number {sender} does not have the SMS outbound capability.",
            "from",
            "InvalidFromPhoneNumber",
        )
    return sender


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


@dataclass
class SendOutcome:
    items: list[dict[str, Any]]
    queued: list[str]


def send(
    session: Session, settings: Settings, resource_id: str, request: SendMessageRequest, now: datetime
) -> SendOutcome:
    """Validate, store one ``queued`` row per accepted recipient, and answer one item per recipient.

    A concurrent request reusing a repeatability id loses on the unique constraint; it is then
    answered again from the stored rows (the caller retries once), so nothing is sent twice.
    """
    try:
        with session.begin_nested():
            return _send(session, settings, resource_id, request, now)
    except IntegrityError:
        return _send(session, settings, resource_id, request, now)


def _send(  # noqa: PLR0912, PLR0915 - the spec's per-recipient rules in one place
    session: Session, settings: Settings, resource_id: str, request: SendMessageRequest, now: datetime
) -> SendOutcome:
    sender = check_sender(session, resource_id, request.from_)
    options = request.sms_send_options
    try:
        segmented = segment_message(request.message)
    except MessageTooLongError as exc:
        raise BadRequest(str(exc), "message", "MessageTooLong") from exc
    segments = max(1, len(segmented.segments))
    timeout = (
        options.delivery_report_timeout_in_seconds
        if options and options.delivery_report_timeout_in_seconds
        else settings.sms_delivery_report_timeout_seconds
    )
    window = timedelta(hours=settings.sms_repeatability_window_hours)
    minute_ago = now - timedelta(minutes=1)

    new_count = len(request.sms_recipients)
    limit = settings.sms_quota_per_resource_per_minute
    if limit:
        recent = session.scalar(
            select(func.count())
            .select_from(SmsMessage)
            .where(SmsMessage.resource_id == resource_id, SmsMessage.created_at > minute_ago)
        )
        if (recent or 0) + new_count > limit:
            raise AcsError(
                429,
                "TooManyRequests",
                f"This resource may send {limit} messages a minute; try again later.",
                headers={"Retry-After": "60"},
            )

    opted_out = set(
        session.scalars(
            select(SmsOptOut.to_number).where(
                SmsOptOut.from_number == sender,
                SmsOptOut.to_number.in_(
                    [n for r in request.sms_recipients if (n := normalise_number(r.to)) is not None]
                ),
            )
        )
    )
    country_counts: dict[str, int] = {}
    items: list[dict[str, Any]] = []
    queued: list[str] = []
    for recipient in request.sms_recipients:
        to = normalise_number(recipient.to)
        if to is None:
            items.append(_item(recipient.to, 400, error="Invalid To phone number format."))
            continue
        request_id = recipient.repeatability_request_id
        repeat: str | None = None
        if request_id is not None:
            first_sent = _parse_first_sent(recipient.repeatability_first_sent)
            if first_sent is None:
                item = _item(
                    to,
                    400,
                    error="Request sent with Invalid DateTime value for repeatability-first-sent. "
                    "Expected is DateTime ,RFC1123 pattern.",
                )
                item["repeatabilityResult"] = "rejected"
                items.append(item)
                continue
            existing = session.scalar(
                select(SmsMessage).where(
                    SmsMessage.resource_id == resource_id, SmsMessage.repeatability_request_id == request_id
                )
            )
            if existing is not None and existing.created_at > now - window:
                item = _item(existing.to_number, 202, existing.id)
                item["repeatabilityResult"] = "accepted"
                items.append(item)
                continue
            if existing is not None:
                existing.repeatability_request_id = None  # outside its window: forgotten
                session.flush()
            repeat = "accepted"
        if to in opted_out:
            items.append(_item(to, 400, error=OPTED_OUT_MESSAGE))
            continue
        country = region_of(to)
        country_limit = settings.sms_country_quota(country)
        if country_limit:
            if country not in country_counts:
                country_counts[country] = (
                    session.scalar(
                        select(func.count())
                        .select_from(SmsMessage)
                        .where(
                            SmsMessage.resource_id == resource_id,
                            SmsMessage.country_code == country,
                            SmsMessage.created_at > minute_ago,
                        )
                    )
                    or 0
                )
            if country_counts[country] >= country_limit:
                items.append(
                    _item(
                        to,
                        429,
                        error=f"Too many requests: at most {country_limit} messages a minute to "
                        f"{country or 'this destination'} from this resource.",
                    )
                )
                continue
            country_counts[country] += 1
        message_id = new_message_id(now)
        session.add(
            SmsMessage(
                id=message_id,
                resource_id=resource_id,
                from_number=sender,
                to_number=to,
                country_code=country,
                text=request.message,
                segment_count=segments,
                data_coding=int(segmented.data_coding),
                tag=options.tag if options else None,
                enable_delivery_report=bool(options and options.enable_delivery_report),
                delivery_report_timeout_seconds=timeout,
                repeatability_request_id=request_id,
                repeatability_first_sent=recipient.repeatability_first_sent,
                state="queued",
                next_attempt_at=now,
                created_at=now,
            )
        )
        queued.append(message_id)
        item = _item(to, 202, message_id)
        if repeat:
            item["repeatabilityResult"] = repeat
        items.append(item)
    session.flush()
    return SendOutcome(items, queued)


# Opt-outs -------------------------------------------------------------------------------------------


def _optout_sender(session: Session, resource_id: str, raw: str) -> str:
    sender = normalise_number(raw)
    if sender is None or owned_number(session, resource_id, sender) is None:
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
    return sms_delivery_report_data(
        message.id,
        message.from_number,
        message.to_number,
        message.delivery_status,
        message.delivery_status_details or "",
        message.report_received_at,
        [
            (
                message.submitted_at or message.report_received_at,
                message.segments_succeeded,
                message.segments_failed,
            )
        ],
        message.tag,
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
