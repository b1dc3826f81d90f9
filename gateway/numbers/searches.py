"""Searches of the tenant API: POST :search holds numbers for a while (the ``search`` operation),
GET searchResults shows them, cancelling the operation releases them. The purchase of a search
is in purchases.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import structlog
from sqlalchemy.orm import Session

from gateway.core.db import utcnow
from gateway.core.errors import BadRequest, NotFound
from gateway.core.settings import Settings
from gateway.numbers import operations
from gateway.numbers.acs import cost_json, not_resell_required
from gateway.numbers.metrics import NUMBERS_HELD
from gateway.numbers.models import NumberOperation, NumberSearch
from gateway.numbers.operations import OperationFailure, handler, on_failure
from gateway.numbers.repository import holds as repository
from gateway.numbers.rules import NumberFilter

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SearchRequest:
    phone_number_type: str
    assignment_type: str
    calling: str
    sms: str
    area_code: str | None
    quantity: int


class StartedSearch(NamedTuple):
    """A search just written (``pending``) and the operation that will run it."""

    search: NumberSearch
    operation: NumberOperation


def start_search(
    session: Session, resource_id: str, country_code: str, request: SearchRequest, settings: Settings
) -> StartedSearch:
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
    return StartedSearch(search, operation)


@handler("search")
def _run_search(session: Session, operation: NumberOperation, settings: Settings, now: datetime) -> None:
    search = repository.lock_search(session, operation.target)
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
    numbers = repository.lock_available(session, wanted, search.quantity, now)
    if not numbers:
        raise OperationFailure("OutOfStock", "No phone numbers matching the search are available.")
    chosen = [n.phone_number for n in numbers]
    repository.hold_for_search(session, chosen, search, expires, now)
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
    search = repository.find_search(session, operation.target)
    if search is not None and search.status == "pending":
        search.status = "failed"
        search.error = operation.error_code


def release_search_hold(session: Session, search: NumberSearch, now: datetime) -> None:
    """Give a held search's numbers back to inventory; the search is then ``canceled``."""
    repository.release_search_numbers(session, search.id, now)
    search.status = "canceled"


def get_search(session: Session, resource_id: str, search_id: str) -> NumberSearch:
    search = repository.search_of(session, resource_id, search_id)
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
