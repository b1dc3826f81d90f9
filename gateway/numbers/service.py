"""Rules of the tenant Phone Numbers API (ACS 2025-06-01): catalogue, search and purchase,
browse and reservations, purchased numbers, operator information.

Every function takes the resource id and scopes every query by it. Holds (searches and
reservations) lock inventory rows with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, so
concurrent buyers never get the same number; SQLite serialises writers (BEGIN IMMEDIATE).
Expiry is lazy (``free_at``, see models.py).
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import phonenumbers
import structlog
from phonenumbers import carrier as pn_carrier
from phonenumbers import geocoder
from prometheus_client import Counter
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from gateway.core.db import utcnow
from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.core.settings import Settings
from gateway.numbers import operations
from gateway.numbers.inventory import available_predicate, filter_clauses, prefix_high
from gateway.numbers.models import (
    InventoryNumber,
    NumberOperation,
    NumberSearch,
    PurchasedNumber,
    Reservation,
    ReservationNumber,
)
from gateway.numbers.operations import OperationFailure, handler, on_failure
from gateway.numbers.rules import (
    CAPABILITY_VALUES,
    InvalidPhoneNumber,
    NumberFilter,
    capability_satisfies,
    normalise_prefix,
    number_id,
    parse_path_number,
)

log = structlog.get_logger(__name__)

NUMBERS_HELD = Counter(
    "trunkline_numbers_held_total", "Numbers put on hold by searches and reservations", ["kind"]
)
NUMBERS_PURCHASED = Counter("trunkline_numbers_purchased_total", "Numbers purchased")
NUMBERS_RELEASED = Counter("trunkline_numbers_released_total", "Numbers released")

RESERVATION_IDLE = timedelta(minutes=15)
RESERVATION_MAX_AGE = timedelta(hours=2)


# Validation helpers ----------------------------------------------------------------------------------


def country(code: str) -> str:
    """A path country code: ISO 3166 alpha-2 known to libphonenumber, case-insensitive."""
    upper = code.strip().upper()
    if len(upper) != 2 or upper not in phonenumbers.SUPPORTED_REGIONS:
        raise BadRequest(
            f"'{code}' is not a supported ISO 3166 country code.", "countryCode", "InvalidCountryCode"
        )
    return upper


def path_number(raw: str) -> str:
    try:
        return parse_path_number(raw)
    except InvalidPhoneNumber as exc:
        raise BadRequest(
            f"'{raw}' is not a phone number in E.164 format, like +14255550123.",
            "phoneNumber",
            "InvalidPhoneNumber",
        ) from exc


def not_resell_required(settings: Settings, country_code: str) -> bool:
    return country_code.upper() in {c.upper() for c in settings.numbers_not_resell_countries}


def cost_json(amount: Decimal | None, currency: str | None) -> dict[str, Any]:
    return {"amount": float(amount or 0), "currencyCode": currency or "", "billingFrequency": "monthly"}


# Catalogue -------------------------------------------------------------------------------------------


def country_name(code: str, language: str | None) -> str:
    example = phonenumbers.example_number(code) or phonenumbers.example_number_for_type(
        code, phonenumbers.PhoneNumberType.TOLL_FREE
    )
    lang = (language or "en").split(",")[0].split(";")[0].strip().split("-")[0] or "en"
    if example is None:
        return code
    return (
        geocoder.country_name_for_number(example, lang)
        or geocoder.country_name_for_number(example, "en")
        or code
    )


def list_countries(session: Session, now: datetime, language: str | None) -> list[dict[str, Any]]:
    codes = session.scalars(
        select(InventoryNumber.country_code)
        .where(available_predicate(now))
        .distinct()
        .order_by(InventoryNumber.country_code)
    ).all()
    return [{"countryCode": code, "localizedName": country_name(code, language)} for code in codes]


def list_localities(
    session: Session, country_code: str, now: datetime, phone_number_type: str | None, division: str | None
) -> list[dict[str, Any]]:
    query = select(InventoryNumber.locality, InventoryNumber.administrative_division).where(
        InventoryNumber.country_code == country_code, available_predicate(now), InventoryNumber.locality != ""
    )
    if phone_number_type:
        query = query.where(InventoryNumber.phone_number_type == phone_number_type)
    if division:
        query = query.where(func.lower(InventoryNumber.administrative_division) == division.lower())
    rows = session.execute(
        query.distinct().order_by(InventoryNumber.locality, InventoryNumber.administrative_division)
    ).all()
    result = []
    for locality, admin in rows:
        item: dict[str, Any] = {"localizedName": locality}
        if admin:
            item["administrativeDivision"] = {"localizedName": admin, "abbreviatedName": admin}
        result.append(item)
    return result


def list_area_codes(
    session: Session,
    country_code: str,
    now: datetime,
    phone_number_type: str,
    assignment_type: str | None,
    locality: str | None,
    division: str | None,
) -> list[dict[str, Any]]:
    if phone_number_type == "geographic" and not locality:
        raise BadRequest("locality is required for geographic area codes.", "locality", "MissingLocality")
    query = select(InventoryNumber.area_code).where(
        InventoryNumber.country_code == country_code,
        InventoryNumber.phone_number_type == phone_number_type,
        available_predicate(now),
    )
    if assignment_type:
        query = query.where(InventoryNumber.assignment_type == assignment_type)
    if locality:
        query = query.where(func.lower(InventoryNumber.locality) == locality.lower())
    if division:
        query = query.where(func.lower(InventoryNumber.administrative_division) == division.lower())
    codes = session.scalars(query.distinct().order_by(InventoryNumber.area_code)).all()
    return [{"areaCode": code} for code in codes]


def list_offerings(
    session: Session,
    country_code: str,
    now: datetime,
    phone_number_type: str | None,
    assignment_type: str | None,
) -> list[dict[str, Any]]:
    query = select(
        InventoryNumber.phone_number_type,
        InventoryNumber.assignment_type,
        InventoryNumber.calling,
        InventoryNumber.sms,
        InventoryNumber.currency_code,
        func.min(InventoryNumber.cost_amount),
    ).where(InventoryNumber.country_code == country_code, available_predicate(now))
    if phone_number_type:
        query = query.where(InventoryNumber.phone_number_type == phone_number_type)
    if assignment_type:
        query = query.where(InventoryNumber.assignment_type == assignment_type)
    group = (
        InventoryNumber.phone_number_type,
        InventoryNumber.assignment_type,
        InventoryNumber.calling,
        InventoryNumber.sms,
        InventoryNumber.currency_code,
    )
    rows = session.execute(query.group_by(*group).order_by(*group)).all()
    return [
        {
            "phoneNumberType": row[0],
            "assignmentType": row[1],
            "availableCapabilities": {"calling": row[2], "sms": row[3]},
            "cost": cost_json(row[5], row[4]),
        }
        for row in rows
    ]


# Search and purchase ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchRequest:
    phone_number_type: str
    assignment_type: str
    calling: str
    sms: str
    area_code: str | None
    quantity: int


def start_search(
    session: Session, resource_id: str, country_code: str, request: SearchRequest, settings: Settings
) -> tuple[NumberSearch, NumberOperation]:
    if not 1 <= request.quantity <= settings.numbers_max_search_quantity:
        raise BadRequest(
            f"quantity must be between 1 and {settings.numbers_max_search_quantity}.",
            "quantity",
            "InvalidQuantity",
        )
    if request.area_code is not None and not request.area_code.isdigit():
        raise BadRequest("areaCode must be digits.", "areaCode", "InvalidAreaCode")
    now = utcnow()
    search = NumberSearch(
        id=str(uuid.uuid4()),
        resource_id=resource_id,
        country_code=country_code,
        phone_number_type=request.phone_number_type,
        assignment_type=request.assignment_type,
        calling=request.calling,
        sms=request.sms,
        area_code=request.area_code,
        quantity=request.quantity,
        status="pending",
        phone_numbers=[],
        not_resell_required=not_resell_required(settings, country_code),
        created_at=now,
        # Known up front, so that the 202's body already carries the real searchExpiresBy.
        expires_at=now + timedelta(minutes=settings.numbers_search_hold_minutes),
    )
    session.add(search)
    session.flush()
    operation = operations.create_operation(
        session,
        resource_id,
        "search",
        search.id,
        operation_uuid=search.id,
        resource_location=f"/availablePhoneNumbers/searchResults/{search.id}",
    )
    log.info("search started", resource_id=resource_id, search_id=search.id, quantity=request.quantity)
    return search, operation


def hold_numbers(
    session: Session, wanted: NumberFilter, quantity: int, now: datetime
) -> list[InventoryNumber]:
    """Lock up to ``quantity`` available numbers matching ``wanted``, skipping rows other
    transactions hold locks on (PostgreSQL); the caller marks them held in the same transaction."""
    query = (
        select(InventoryNumber)
        .where(*filter_clauses(wanted, now))
        .order_by(InventoryNumber.free_at)  # an index order (with or without area code): no sort
        .limit(quantity)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


@handler("search")
def _run_search(session: Session, operation: NumberOperation, settings: Settings, now: datetime) -> None:
    search = session.get(NumberSearch, operation.target, with_for_update=True)
    if search is None or search.resource_id != operation.resource_id:
        raise OperationFailure("UnknownSearchError", "The search no longer exists.")
    if search.status != "pending":
        return  # already ran (a re-run after a crash between commit and status update)
    wanted = NumberFilter(
        country_code=search.country_code,
        phone_number_type=search.phone_number_type,
        assignment_type=search.assignment_type,
        area_code=search.area_code,
        calling=search.calling,
        sms=search.sms,
    )
    expires = search.expires_at or now + timedelta(minutes=settings.numbers_search_hold_minutes)
    if expires <= now:
        raise OperationFailure("ReservationExpired", "The search expired before it could run.")
    numbers = hold_numbers(session, wanted, search.quantity, now)
    if not numbers:
        raise OperationFailure("OutOfStock", "No phone numbers matching the search are available.")
    chosen = [n.phone_number for n in numbers]
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.phone_number.in_(chosen))
        .values(
            status="reserved",
            free_at=expires,
            holder_resource_id=search.resource_id,
            search_id=search.id,
            reservation_id=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    priciest = max(numbers, key=lambda n: n.cost_amount)
    search.status = "held"
    search.phone_numbers = sorted(chosen)
    search.cost_amount = priciest.cost_amount
    search.currency_code = priciest.currency_code
    search.expires_at = expires
    NUMBERS_HELD.labels("search").inc(len(chosen))
    log.info("search held numbers", resource_id=search.resource_id, search_id=search.id, count=len(chosen))


@on_failure("search")
def _search_failed(session: Session, operation: NumberOperation) -> None:
    search = session.get(NumberSearch, operation.target)
    if search is not None and search.status == "pending":
        search.status = "failed"
        search.error = operation.error_code


def release_search_hold(session: Session, search: NumberSearch, now: datetime) -> None:
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.search_id == search.id, InventoryNumber.status == "reserved")
        .values(status="available", free_at=now, holder_resource_id=None, search_id=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    search.status = "canceled"


def get_search(session: Session, resource_id: str, search_id: str) -> NumberSearch:
    search = session.scalar(
        select(NumberSearch).where(NumberSearch.id == search_id, NumberSearch.resource_id == resource_id)
    )
    if search is None or search.status == "pending":
        raise NotFound(f"No search result '{search_id}'.", "searchId")
    return search


def search_json(search: NumberSearch) -> dict[str, Any]:
    data: dict[str, Any] = {
        "searchId": search.id,
        "phoneNumbers": list(search.phone_numbers or []),
        "phoneNumberType": search.phone_number_type,
        "assignmentType": search.assignment_type,
        "capabilities": {"calling": search.calling, "sms": search.sms},
        "cost": cost_json(search.cost_amount, search.currency_code),
        "searchExpiresBy": (search.expires_at or search.created_at).isoformat().replace("+00:00", "Z"),
        "isAgreementToNotResellRequired": search.not_resell_required,
    }
    if search.error:
        data["error"] = search.error
    return data


def start_purchase(
    session: Session, resource_id: str, search_id: str | None, agree_to_not_resell: bool, now: datetime
) -> NumberOperation:
    if not search_id:
        raise BadRequest("searchId is required.", "searchId", "MissingSearchId")
    search = session.scalar(
        select(NumberSearch).where(NumberSearch.id == search_id, NumberSearch.resource_id == resource_id)
    )
    if search is None:
        raise NotFound(f"No search '{search_id}'.", "searchId", "SearchNotFound")
    if search.status == "purchased":
        raise Conflict(f"Search '{search_id}' was already purchased.", "searchId", "PurchaseFailed")
    if search.status != "held":
        raise BadRequest(
            f"Search '{search_id}' has no numbers to purchase.", "searchId", "UnknownSearchError"
        )
    if search.expires_at is None or search.expires_at <= now:
        raise BadRequest(f"Search '{search_id}' expired; search again.", "searchId", "ReservationExpired")
    if search.not_resell_required and not agree_to_not_resell:
        raise BadRequest(
            "These numbers require agreeToNotResell: true.",
            "agreeToNotResell",
            "AgreementToNotResellRequired",
        )
    return operations.create_operation(session, resource_id, "purchase", search.id)


def _purchase(
    session: Session,
    resource_id: str,
    rows: Sequence[InventoryNumber],
    caps: dict[str, tuple[str, str]],
    op_id: str,
    now: datetime,
) -> None:
    for number in rows:
        calling, sms = caps[number.phone_number]
        session.add(
            PurchasedNumber(
                phone_number=number.phone_number,
                resource_id=resource_id,
                country_code=number.country_code,
                phone_number_type=number.phone_number_type,
                assignment_type=number.assignment_type,
                calling=calling,
                sms=sms,
                cost_amount=number.cost_amount,
                currency_code=number.currency_code,
                purchase_date=now,
                operation_id=op_id,
            )
        )
        number.status = "purchased"
        number.free_at = None
        number.holder_resource_id = resource_id
        number.search_id = None
        number.reservation_id = None
        number.updated_at = now
    try:
        session.flush()
    except IntegrityError as exc:  # the primary key of purchased_numbers: never sold twice
        raise OperationFailure("PurchaseFailed", "A number in this purchase is already owned.") from exc
    NUMBERS_PURCHASED.inc(len(rows))
    log.info("numbers purchased", resource_id=resource_id, operation_id=op_id, count=len(rows))


@handler("purchase")
def _run_purchase(session: Session, operation: NumberOperation, settings: Settings, now: datetime) -> None:
    search = session.get(NumberSearch, operation.target, with_for_update=True)
    if search is None or search.resource_id != operation.resource_id:
        raise OperationFailure("UnknownSearchError", "The search no longer exists.")
    if search.status == "purchased":
        raise OperationFailure("PurchaseFailed", "The search was already purchased.")
    if search.status != "held" or search.expires_at is None or search.expires_at <= now:
        raise OperationFailure("ReservationExpired", "The search expired before the purchase; search again.")
    rows = list(
        session.scalars(
            select(InventoryNumber)
            .where(
                InventoryNumber.search_id == search.id,
                InventoryNumber.status == "reserved",
                InventoryNumber.holder_resource_id == search.resource_id,
                InventoryNumber.free_at > now,
            )
            .with_for_update()
        )
    )
    if {r.phone_number for r in rows} != set(search.phone_numbers or []):
        raise OperationFailure("ReservationExpired", "Some numbers of the search are no longer held.")
    caps = {r.phone_number: (search.calling, search.sms) for r in rows}
    _purchase(session, search.resource_id, rows, caps, operation.id, now)
    search.status = "purchased"


# Purchased numbers ------------------------------------------------------------------------------------


def owned_number(session: Session, resource_id: str, e164: str) -> PurchasedNumber | None:
    """The number if ``resource_id`` owns it (for SMS sender checks and inbound routing)."""
    return session.scalar(
        select(PurchasedNumber).where(
            PurchasedNumber.phone_number == e164, PurchasedNumber.resource_id == resource_id
        )
    )


def number_owner(session: Session, e164: str) -> PurchasedNumber | None:
    """Who owns ``e164`` at all (for routing inbound SMS and calls to a resource)."""
    return session.get(PurchasedNumber, e164)


def get_owned(session: Session, resource_id: str, raw: str, *, for_update: bool = False) -> PurchasedNumber:
    e164 = path_number(raw)
    query = select(PurchasedNumber).where(
        PurchasedNumber.phone_number == e164, PurchasedNumber.resource_id == resource_id
    )
    if for_update:
        query = query.with_for_update()
    number = session.scalar(query)
    if number is None:
        raise NotFound(
            f"Phone number {e164} is not purchased by this resource.", "phoneNumber", "PhoneNumberNotFound"
        )
    return number


Row = TypeVar("Row")


def _page(session: Session, query: Select[Row], skip: int, top: int) -> tuple[list[Row], bool]:
    """Rows ``skip`` .. ``skip + top`` of an ordered query, and whether more follow (one extra row
    is read to know, so no count query is needed)."""
    rows = list(session.scalars(query.offset(skip).limit(top + 1)))
    return rows[:top], len(rows) > top


def list_owned(session: Session, resource_id: str, skip: int, top: int) -> tuple[list[PurchasedNumber], bool]:
    query = (
        select(PurchasedNumber)
        .where(PurchasedNumber.resource_id == resource_id)
        .order_by(PurchasedNumber.purchase_date, PurchasedNumber.phone_number)
    )
    return _page(session, query, skip, top)


def purchased_json(number: PurchasedNumber) -> dict[str, Any]:
    return {
        "id": number_id(number.phone_number),
        "phoneNumber": number.phone_number,
        "countryCode": number.country_code,
        "phoneNumberType": number.phone_number_type,
        "assignmentType": number.assignment_type,
        "capabilities": {"calling": number.calling, "sms": number.sms},
        "purchaseDate": number.purchase_date.isoformat().replace("+00:00", "Z"),
        "cost": cost_json(number.cost_amount, number.currency_code),
    }


def start_update_capabilities(
    session: Session, resource_id: str, raw: str, calling: str | None, sms: str | None
) -> NumberOperation:
    number = get_owned(session, resource_id, raw)
    inventory = session.get(InventoryNumber, number.phone_number)
    assert inventory is not None
    new_calling = calling or number.calling
    new_sms = sms or number.sms
    for name, value, offered in (
        ("calling", new_calling, inventory.calling),
        ("sms", new_sms, inventory.sms),
    ):
        if value not in CAPABILITY_VALUES:
            raise BadRequest(f"{name} must be one of {', '.join(CAPABILITY_VALUES)}.", name)
        if not capability_satisfies(offered, value):
            raise BadRequest(
                f"{number.phone_number} supports {name} '{offered}' at most; '{value}' is not available.",
                name,
                "CapabilityNotSupported",
            )
    return operations.create_operation(
        session,
        resource_id,
        "updatePhoneNumberCapabilities",
        number.phone_number,
        {"calling": new_calling, "sms": new_sms},
        resource_location=f"/phoneNumbers/{number.phone_number}",
    )


@handler("updatePhoneNumberCapabilities")
def _run_update_capabilities(
    session: Session, operation: NumberOperation, settings: Settings, now: datetime
) -> None:
    number = session.scalar(
        select(PurchasedNumber)
        .where(
            PurchasedNumber.phone_number == operation.target,
            PurchasedNumber.resource_id == operation.resource_id,
        )
        .with_for_update()
    )
    if number is None:
        raise OperationFailure("UnknownErrorCode", "The number is no longer owned by this resource.")
    number.calling = operation.payload["calling"]
    number.sms = operation.payload["sms"]
    log.info("capabilities updated", resource_id=operation.resource_id, phone_number=number.phone_number)


def start_release(session: Session, resource_id: str, raw: str) -> NumberOperation:
    number = get_owned(session, resource_id, raw)
    return operations.create_operation(session, resource_id, "releasePhoneNumber", number.phone_number)


@handler("releasePhoneNumber")
def _run_release(session: Session, operation: NumberOperation, settings: Settings, now: datetime) -> None:
    number = session.scalar(
        select(PurchasedNumber)
        .where(
            PurchasedNumber.phone_number == operation.target,
            PurchasedNumber.resource_id == operation.resource_id,
        )
        .with_for_update()
    )
    if number is None:
        return  # already released (a re-run)
    inventory = session.get(InventoryNumber, number.phone_number, with_for_update=True)
    # Removing the purchased_numbers row is what removes its routing: inbound SMS and calls and
    # sender checks all look numbers up there.
    session.delete(number)
    if inventory is not None:
        quarantine = timedelta(minutes=settings.numbers_release_quarantine_minutes)
        inventory.status = "quarantined" if quarantine else "available"
        inventory.free_at = now + quarantine
        inventory.holder_resource_id = None
        inventory.search_id = None
        inventory.reservation_id = None
        inventory.updated_at = now
    NUMBERS_RELEASED.inc()
    log.info("number released", resource_id=operation.resource_id, phone_number=operation.target)


# Browse and reservations ---------------------------------------------------------------------------------


def available_json(
    number: InventoryNumber,
    settings: Settings,
    status: str,
    calling: str | None = None,
    sms: str | None = None,
) -> dict[str, Any]:
    return {
        "id": number_id(number.phone_number),
        "countryCode": number.country_code,
        "phoneNumber": number.phone_number,
        "capabilities": {"calling": calling or number.calling, "sms": sms or number.sms},
        "phoneNumberType": number.phone_number_type,
        "assignmentType": number.assignment_type,
        "cost": cost_json(number.cost_amount, number.currency_code),
        "status": status,
        "isAgreementToNotResellRequired": not_resell_required(settings, number.country_code),
    }


BROWSE_WINDOW = 2000


def browse(
    session: Session, country_code: str, wanted: NumberFilter, settings: Settings, now: datetime
) -> list[dict[str, Any]]:
    """Available numbers matching ``wanted``, at random.

    A random point of the number space (within a requested prefix, else the country's calling
    code) is picked and the next ``BROWSE_WINDOW`` numbers by primary key are filtered: a bounded
    index range scan, whatever the size of the inventory; the answer is a random sample of the
    matches. If a few tries find too few (sparse matches), the rest comes from the search index.
    Numbers right after a gap in the number space are likelier picks than others: random, not
    uniform.
    """
    limit = settings.numbers_browse_max_results
    wanted = dataclasses.replace(wanted, prefixes=tuple(normalise_prefix(p) for p in wanted.prefixes))
    clauses = filter_clauses(wanted, now)
    seeds = list(wanted.prefixes) or [str(phonenumbers.country_code_for_region(country_code))]
    candidates: set[str] = set()
    for _ in range(3):
        seed = random.choice(seeds)  # noqa: S311 - not security-relevant
        digits = max(0, 15 - len(seed))
        pivot = "+" + seed + "".join(random.choices("0123456789", k=digits))  # noqa: S311
        # The LIMIT inside the subquery keeps the planner from scanning the whole prefix range.
        window = aliased(
            InventoryNumber,
            select(InventoryNumber)
            .where(InventoryNumber.phone_number >= pivot, InventoryNumber.phone_number <= prefix_high(seed))
            .order_by(InventoryNumber.phone_number)
            .limit(BROWSE_WINDOW)
            .subquery(),
        )
        candidates.update(
            session.scalars(select(window.phone_number).where(*filter_clauses(wanted, now, window)))
        )
        if len(candidates) >= limit:
            break
    picked = random.sample(sorted(candidates), min(limit, len(candidates)))
    chosen = {
        n.phone_number: n
        for n in session.scalars(select(InventoryNumber).where(InventoryNumber.phone_number.in_(picked)))
    }
    if len(chosen) < limit:
        query = select(InventoryNumber).where(*clauses)
        if chosen:
            query = query.where(InventoryNumber.phone_number.not_in(list(chosen)))
        for number in session.scalars(query.limit(limit - len(chosen))):
            chosen[number.phone_number] = number
    found = list(chosen.values())
    random.shuffle(found)
    return [available_json(n, settings, "available", wanted.calling, wanted.sms) for n in found]


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
    query = select(Reservation).where(
        Reservation.id == reservation_uuid(raw_id), Reservation.resource_id == resource_id
    )
    if for_update:
        query = query.with_for_update()
    reservation = session.scalar(query)
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
    rows = session.execute(
        select(ReservationNumber, InventoryNumber)
        .join(InventoryNumber, InventoryNumber.phone_number == ReservationNumber.phone_number)
        .where(ReservationNumber.reservation_id == reservation.id)
        .order_by(ReservationNumber.phone_number)
    ).all()
    item_status = {
        "active": "reserved",
        "submitted": "reserved",
        "completed": "purchased",
        "expired": "expired",
    }
    for item, number in rows:
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
) -> tuple[dict[str, Any], int]:
    """PATCH a reservation: add numbers, remove those set to null. Returns (body, 201|200|207)."""
    reservation_id = reservation_uuid(raw_id)
    changes = body.get("phoneNumbers") or {}
    if not isinstance(changes, dict):
        raise BadRequest("phoneNumbers must be an object keyed by phone number id.", "phoneNumbers")
    existing = session.scalar(select(Reservation).where(Reservation.id == reservation_id).with_for_update())
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
    current = set(
        session.scalars(
            select(ReservationNumber.phone_number).where(ReservationNumber.reservation_id == reservation.id)
        )
    )
    for key in sorted(changes):  # a stable lock order
        value = changes[key]
        try:
            e164 = _requested_number(key, value)
        except InvalidPhoneNumber:
            errors[key] = _item_error(key, "InvalidPhoneNumber", f"'{key}' is not a phone number id.")
            continue
        if value is None:
            if e164 in current:
                _release_reserved(session, reservation.id, e164, now)
                current.discard(e164)
            continue
        if e164 in current:
            continue
        number = session.scalar(
            select(InventoryNumber).where(InventoryNumber.phone_number == e164).with_for_update()
        )
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
    # Every hold of the reservation lasts until its (new) expiry.
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.reservation_id == reservation.id, InventoryNumber.status == "reserved")
        .values(free_at=reservation.expires_at)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    status_code = 207 if errors else (201 if created else 200)
    log.info(
        "reservation updated",
        resource_id=resource_id,
        reservation_id=reservation.id,
        numbers=len(current),
        failed=len(errors),
    )
    return reservation_json(session, reservation, settings, now, errors=errors), status_code


def _item_error(key: str, code: str, message: str) -> dict[str, Any]:
    return {"id": key, "status": "error", "error": {"code": code, "message": message}}


def _release_reserved(session: Session, reservation_id: str, e164: str, now: datetime) -> None:
    session.execute(
        delete(ReservationNumber).where(
            ReservationNumber.reservation_id == reservation_id, ReservationNumber.phone_number == e164
        )
    )
    session.execute(
        update(InventoryNumber)
        .where(
            InventoryNumber.phone_number == e164,
            InventoryNumber.reservation_id == reservation_id,
            InventoryNumber.status == "reserved",
        )
        .values(status="available", free_at=now, holder_resource_id=None, reservation_id=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


RESERVATION_RETENTION = timedelta(days=30)


def list_reservations(
    session: Session, resource_id: str, skip: int, top: int
) -> tuple[list[Reservation], bool]:
    """A page of the resource's reservations. Reservations older than a month are deleted first
    (the spec's retention rule, applied lazily); their holds lapsed long ago."""
    session.execute(
        delete(Reservation).where(
            Reservation.resource_id == resource_id,
            Reservation.created_at < utcnow() - RESERVATION_RETENTION,
            Reservation.status != "submitted",
        )
    )
    query = (
        select(Reservation)
        .where(Reservation.resource_id == resource_id)
        .order_by(Reservation.created_at, Reservation.id)
    )
    return _page(session, query, skip, top)


def delete_reservation(session: Session, resource_id: str, raw_id: str, now: datetime) -> None:
    reservation = get_reservation(session, resource_id, raw_id, for_update=True)
    if reservation.status != "active":
        raise Conflict(
            f"Reservation {reservation.id} is {reservation.status}; only active reservations can be deleted.",
            "reservationId",
            "ReservationNotActive",
        )
    for e164 in list(
        session.scalars(
            select(ReservationNumber.phone_number).where(ReservationNumber.reservation_id == reservation.id)
        )
    ):
        _release_reserved(session, reservation.id, e164, now)
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
    countries = set(
        session.scalars(
            select(InventoryNumber.country_code)
            .join(ReservationNumber, ReservationNumber.phone_number == InventoryNumber.phone_number)
            .where(ReservationNumber.reservation_id == reservation.id)
        )
    )
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
    reservation = session.get(Reservation, operation.target, with_for_update=True)
    if reservation is None or reservation.resource_id != operation.resource_id:
        raise OperationFailure("UnknownErrorCode", "The reservation no longer exists.")
    if reservation.status == "completed":
        return
    if reservation.expires_at <= now:
        raise OperationFailure("ReservationExpired", "The reservation expired before the purchase.")
    items = {
        item.phone_number: (item.calling, item.sms)
        for item in session.scalars(
            select(ReservationNumber).where(ReservationNumber.reservation_id == reservation.id)
        )
    }
    rows = list(
        session.scalars(
            select(InventoryNumber)
            .where(
                InventoryNumber.reservation_id == reservation.id,
                InventoryNumber.status == "reserved",
                InventoryNumber.free_at > now,
            )
            .with_for_update()
        )
    )
    if {r.phone_number for r in rows} != set(items):
        raise OperationFailure(
            "NumbersPartiallyAcquired", "Some numbers of the reservation are no longer held."
        )
    _purchase(session, reservation.resource_id, rows, items, operation.id, now)
    reservation.status = "completed"


@on_failure("reservationPurchase")
def _reservation_purchase_failed(session: Session, operation: NumberOperation) -> None:
    reservation = session.get(Reservation, operation.target)
    if reservation is not None and reservation.status == "submitted":
        reservation.status = "active"


def forget_resource(session: Session, resource_id: str, now: datetime, quarantine: timedelta) -> int:
    """Before a resource is deleted: its numbers go to quarantine (as if released) and its holds
    end, so that nothing stays purchased by, or held for, a resource that no longer exists."""
    owned = list(
        session.scalars(
            select(PurchasedNumber.phone_number).where(PurchasedNumber.resource_id == resource_id)
        )
    )
    session.execute(delete(PurchasedNumber).where(PurchasedNumber.resource_id == resource_id))
    if owned:
        session.execute(
            update(InventoryNumber)
            .where(InventoryNumber.phone_number.in_(owned))
            .values(
                status="quarantined" if quarantine else "available",
                free_at=now + quarantine,
                holder_resource_id=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.holder_resource_id == resource_id, InventoryNumber.status == "reserved")
        .values(status="available", free_at=now, holder_resource_id=None, search_id=None, reservation_id=None)
        .execution_options(synchronize_session=False)
    )
    log.info("numbers of a deleted resource released", resource_id=resource_id, count=len(owned))
    return len(owned)


def cancel_operation(session: Session, resource_id: str, operation_id: str, now: datetime) -> None:
    operation = operations.cancel(session, resource_id, operation_id)
    if operation.operation_type == "search" and operation.status == "succeeded":
        search = session.get(NumberSearch, operation.target, with_for_update=True)
        if search is not None and search.status == "held":
            release_search_hold(session, search, now)
            log.info("search cancelled, hold released", resource_id=resource_id, search_id=search.id)
    elif operation.status == "running":
        raise Conflict(
            "The operation is running and cannot be cancelled.", "operationId", "OperationNotCancelable"
        )


def operation_json(operation: NumberOperation, base_url: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": operation.id,
        "operationType": operation.operation_type,
        "status": operation.status,
        "createdDateTime": operation.created_at.isoformat().replace("+00:00", "Z"),
        "lastActionDateTime": operation.last_action_at.isoformat().replace("+00:00", "Z"),
    }
    if operation.status == "succeeded" and operation.resource_location:
        data["resourceLocation"] = absolute(base_url, operation.resource_location)
    if operation.status == "failed":
        data["error"] = {
            "code": operation.error_code or "UnknownErrorCode",
            "message": operation.error_message or "",
        }
    return data


API_VERSION = "2025-06-01"


def absolute(base_url: str, path: str, **query: Any) -> str:
    from urllib.parse import quote, urlencode

    params = {**{k: v for k, v in query.items() if v is not None}, "api-version": API_VERSION}
    return f"{base_url.rstrip('/')}{quote(path, safe='/:')}?{urlencode(params)}"


# Operator information ---------------------------------------------------------------------------------

_OPERATOR_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "geographic",
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.UNKNOWN: "unknown",
}


def operator_information(raw_numbers: Sequence[str], include_details: bool) -> list[dict[str, Any]]:
    """Format and operator data from libphonenumber's own metadata; unknown fields stay empty."""
    if not raw_numbers:
        raise BadRequest("phoneNumbers must list at least one number.", "phoneNumbers")
    if len(raw_numbers) > 100:
        raise BadRequest("At most 100 phone numbers per request.", "phoneNumbers")
    results = []
    for index, raw in enumerate(raw_numbers):
        try:
            parsed = phonenumbers.parse(raw if raw.startswith("+") else "+" + raw, None)
        except phonenumbers.NumberParseException as exc:
            raise BadRequest(
                f"'{raw}' is not a phone number.", f"phoneNumbers[{index}]", "InvalidPhoneNumber"
            ) from exc
        if not phonenumbers.is_possible_number(parsed):
            raise BadRequest(
                f"'{raw}' is not a phone number.", f"phoneNumbers[{index}]", "InvalidPhoneNumber"
            )
        item: dict[str, Any] = {
            "phoneNumber": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
            "nationalFormat": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
            "internationalFormat": phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL
            ),
        }
        if include_details:
            region = phonenumbers.region_code_for_number(parsed)
            if region:
                item["isoCountryCode"] = region
            kind = phonenumbers.number_type(parsed)
            item["numberType"] = _OPERATOR_TYPES.get(kind, "other")
            name = pn_carrier.name_for_number(parsed, "en")
            if name:
                item["operatorDetails"] = {"name": name}
        results.append(item)
    return results


__all__ = ["InvalidPhoneNumber", "normalise_prefix", "number_owner", "owned_number"]
