"""Reservations of the tenant API (2025-06-01): PATCH adds and removes numbers, each held until
the reservation expires (15 minutes after its last change, at most 2 hours after its creation);
GET, list and DELETE; :purchase buys them all (the ``reservationPurchase`` operation).
Reservations older than a month are deleted lazily when listed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.core.db import utcnow
from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.core.settings import Settings
from gateway.numbers import operations
from gateway.numbers.acs import not_resell_required
from gateway.numbers.browse import available_json
from gateway.numbers.metrics import NUMBERS_HELD
from gateway.numbers.models import NumberOperation, Reservation, ReservationNumber
from gateway.numbers.operations import OperationFailure, handler, on_failure
from gateway.numbers.purchases import Capabilities, purchase_numbers
from gateway.numbers.repository import holds as repository
from gateway.numbers.repository.paging import Page
from gateway.numbers.rules import (
    CAPABILITY_VALUES,
    InvalidPhoneNumber,
    capability_satisfies,
    number_id,
    parse_path_number,
)

log = structlog.get_logger(__name__)

RESERVATION_IDLE = timedelta(minutes=15)
RESERVATION_MAX_AGE = timedelta(hours=2)
RESERVATION_RETENTION = timedelta(days=30)


class ReservationUpdate(NamedTuple):
    """PATCH's answer: the reservation's body and its status (201 created, 200, 207 partly failed)."""

    body: dict[str, Any]
    status_code: int


def reservation_uuid(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError as exc:
        raise BadRequest(f"'{raw}' is not a UUID.", "reservationId", "InvalidReservationId") from exc


def effective_reservation_status(reservation: Reservation, now: datetime) -> str:
    if reservation.status == "active" and reservation.expires_at <= now:
        return "expired"
    return reservation.status


def get_reservation(
    session: Session, resource_id: str, raw_id: str, *, for_update: bool = False
) -> Reservation:
    reservation = repository.reservation_of(
        session, resource_id, reservation_uuid(raw_id), for_update=for_update
    )
    if reservation is None:
        raise NotFound(f"No reservation '{raw_id}'.", "reservationId", "ReservationNotFound")
    return reservation


def reservation_json(
    session: Session,
    reservation: Reservation,
    settings: Settings,
    now: datetime,
    *,
    with_numbers: bool = True,
    errors: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status = effective_reservation_status(reservation, now)
    data: dict[str, Any] = {
        "id": reservation.id,
        "expiresAt": reservation.expires_at.isoformat().replace("+00:00", "Z"),
        "status": status,
    }
    if not with_numbers:
        return data
    numbers: dict[str, Any] = {}
    item_status = {
        "active": "reserved",
        "submitted": "reserved",
        "completed": "purchased",
        "expired": "expired",
    }
    for item, number in repository.reserved_numbers(session, reservation.id):
        numbers[number_id(number.phone_number)] = available_json(
            number, settings, item_status.get(status, "reserved"), item.calling, item.sms
        )
    numbers.update(errors or {})
    data["phoneNumbers"] = numbers
    return data


def _requested_number(key: str, value: Any) -> str:
    raw = key
    if isinstance(value, dict) and isinstance(value.get("phoneNumber"), str):
        raw = value["phoneNumber"]
    return parse_path_number(raw)


def upsert_reservation(  # noqa: PLR0912, PLR0915 - the spec's PATCH rules in one place
    session: Session, resource_id: str, raw_id: str, body: dict[str, Any], settings: Settings, now: datetime
) -> ReservationUpdate:
    """PATCH a reservation: add numbers, remove those set to null."""
    reservation_id = reservation_uuid(raw_id)
    changes = body.get("phoneNumbers") or {}
    if not isinstance(changes, dict):
        raise BadRequest("phoneNumbers must be an object keyed by phone number id.", "phoneNumbers")
    existing = repository.lock_reservation_by_id(session, reservation_id)
    created = existing is None
    if existing is not None and existing.resource_id != resource_id:
        raise NotFound(f"No reservation '{raw_id}'.", "reservationId", "ReservationNotFound")
    if existing is None:
        reservation = Reservation(
            id=reservation_id,
            resource_id=resource_id,
            status="active",
            created_at=now,
            updated_at=now,
            expires_at=now + RESERVATION_IDLE,
        )
        session.add(reservation)
        try:
            session.flush()
        except IntegrityError as exc:
            raise Conflict("The reservation was created concurrently; retry.", "reservationId") from exc
    else:
        reservation = existing
        if effective_reservation_status(reservation, now) != "active":
            raise Conflict(
                f"Reservation {reservation_id} is {effective_reservation_status(reservation, now)}; "
                "only active reservations can be updated.",
                "reservationId",
                "ReservationNotActive",
            )
    reservation.updated_at = now
    reservation.expires_at = min(now + RESERVATION_IDLE, reservation.created_at + RESERVATION_MAX_AGE)
    errors: dict[str, dict[str, Any]] = {}
    current = set(repository.reservation_phone_numbers(session, reservation.id))
    for key in sorted(changes):  # a stable lock order
        value = changes[key]
        try:
            e164 = _requested_number(key, value)
        except InvalidPhoneNumber:
            errors[key] = _item_error(key, "InvalidPhoneNumber", f"'{key}' is not a phone number id.")
            continue
        if value is None:
            if e164 in current:
                repository.release_reserved(session, reservation.id, e164, now)
                current.discard(e164)
            continue
        if e164 in current:
            continue
        number = repository.lock_number(session, e164)
        if number is None or number.free_at is None or number.free_at > now:
            errors[key] = _item_error(key, "FailedToReserveNumber", "The number is not available.")
            continue
        calling, sms = number.calling, number.sms
        caps = value.get("capabilities") if isinstance(value, dict) else None
        if isinstance(caps, dict):
            calling = caps.get("calling") or calling
            sms = caps.get("sms") or sms
            if not (
                calling in CAPABILITY_VALUES
                and sms in CAPABILITY_VALUES
                and capability_satisfies(number.calling, calling)
                and capability_satisfies(number.sms, sms)
            ):
                errors[key] = _item_error(
                    key, "CapabilityNotSupported", "The number does not offer these capabilities."
                )
                continue
        number.status = "reserved"
        number.holder_resource_id = resource_id
        number.reservation_id = reservation.id
        number.search_id = None
        number.updated_at = now
        session.add(
            ReservationNumber(
                reservation_id=reservation.id, phone_number=e164, calling=calling, sms=sms, added_at=now
            )
        )
        current.add(e164)
        NUMBERS_HELD.labels("reservation").inc()
    repository.extend_reservation_holds(session, reservation)
    session.flush()
    status_code = 207 if errors else (201 if created else 200)
    log.info(
        "reservation updated",
        resource_id=resource_id,
        reservation_id=reservation.id,
        numbers=len(current),
        failed=len(errors),
    )
    return ReservationUpdate(
        reservation_json(session, reservation, settings, now, errors=errors), status_code
    )


def _item_error(key: str, code: str, message: str) -> dict[str, Any]:
    return {"id": key, "status": "error", "error": {"code": code, "message": message}}


def list_reservations(session: Session, resource_id: str, skip: int, top: int) -> Page[Reservation]:
    """A page of the resource's reservations. Reservations older than a month are deleted first
    (the spec's retention rule, applied lazily); their holds lapsed long ago."""
    repository.delete_old_reservations(session, resource_id, utcnow() - RESERVATION_RETENTION)
    return repository.reservations_page(session, resource_id, skip, top)


def delete_reservation(session: Session, resource_id: str, raw_id: str, now: datetime) -> None:
    reservation = get_reservation(session, resource_id, raw_id, for_update=True)
    if reservation.status != "active":
        raise Conflict(
            f"Reservation {reservation.id} is {reservation.status}; only active reservations can be deleted.",
            "reservationId",
            "ReservationNotActive",
        )
    for e164 in repository.reservation_phone_numbers(session, reservation.id):
        repository.release_reserved(session, reservation.id, e164, now)
    session.delete(reservation)
    log.info("reservation deleted", resource_id=resource_id, reservation_id=reservation.id)


def start_reservation_purchase(
    session: Session,
    resource_id: str,
    raw_id: str,
    agree_to_not_resell: bool,
    settings: Settings,
    now: datetime,
) -> NumberOperation:
    reservation = get_reservation(session, resource_id, raw_id, for_update=True)
    status = effective_reservation_status(reservation, now)
    if status == "expired":
        raise BadRequest(f"Reservation {reservation.id} expired.", "reservationId", "ReservationExpired")
    if status != "active":
        raise Conflict(f"Reservation {reservation.id} is {status}.", "reservationId", "ReservationNotActive")
    countries = repository.reservation_countries(session, reservation.id)
    if not countries:
        raise BadRequest("The reservation has no phone numbers.", "reservationId", "EmptyReservation")
    if any(not_resell_required(settings, c) for c in countries) and not agree_to_not_resell:
        raise BadRequest(
            "Numbers in this reservation require agreeToNotResell: true.",
            "agreeToNotResell",
            "AgreementToNotResellRequired",
        )
    reservation.status = "submitted"
    return operations.create_operation(session, resource_id, "reservationPurchase", reservation.id)


@handler("reservationPurchase")
def _run_reservation_purchase(
    session: Session, operation: NumberOperation, settings: Settings, now: datetime
) -> None:
    reservation = repository.lock_reservation(session, operation.target)
    if reservation is None or reservation.resource_id != operation.resource_id:
        raise OperationFailure("UnknownErrorCode", "The reservation no longer exists.")
    if reservation.status == "completed":
        return
    if reservation.expires_at <= now:
        raise OperationFailure("ReservationExpired", "The reservation expired before the purchase.")
    items = {
        item.phone_number: Capabilities(item.calling, item.sms)
        for item in repository.reservation_items(session, reservation.id)
    }
    rows = repository.lock_reservation_holds(session, reservation.id, now)
    if {r.phone_number for r in rows} != set(items):
        raise OperationFailure(
            "NumbersPartiallyAcquired", "Some numbers of the reservation are no longer held."
        )
    purchase_numbers(session, reservation.resource_id, rows, items, operation.id, now)
    reservation.status = "completed"


@on_failure("reservationPurchase")
def _reservation_purchase_failed(session: Session, operation: NumberOperation) -> None:
    reservation = repository.find_reservation(session, operation.target)
    if reservation is not None and reservation.status == "submitted":
        reservation.status = "active"
