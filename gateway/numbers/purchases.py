"""Purchases of the tenant API: POST :purchase of a held search (the ``purchase`` operation), and
``purchase_numbers``, the one step that turns held inventory rows into purchased numbers (also
used by a reservation's purchase). A number is never sold twice: purchased_numbers' primary key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.core.settings import Settings
from gateway.numbers import operations
from gateway.numbers.metrics import NUMBERS_PURCHASED
from gateway.numbers.models import InventoryNumber, NumberOperation, PurchasedNumber
from gateway.numbers.operations import OperationFailure, handler
from gateway.numbers.repository import holds as repository

log = structlog.get_logger(__name__)


class Capabilities(NamedTuple):
    """The calling and SMS capabilities a number is bought with."""

    calling: str
    sms: str


def start_purchase(
    session: Session, resource_id: str, search_id: str | None, agree_to_not_resell: bool, now: datetime
) -> NumberOperation:
    if not search_id:
        raise BadRequest("searchId is required.", "searchId", "MissingSearchId")
    search = repository.search_of(session, resource_id, search_id)
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


def purchase_numbers(
    session: Session,
    resource_id: str,
    rows: Sequence[InventoryNumber],
    caps: Mapping[str, Capabilities],
    op_id: str,
    now: datetime,
) -> None:
    """Sell the locked inventory ``rows`` to ``resource_id``, each with its capabilities in ``caps``."""
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
    search = repository.lock_search(session, operation.target)
    if search is None or search.resource_id != operation.resource_id:
        raise OperationFailure("UnknownSearchError", "The search no longer exists.")
    if search.status == "purchased":
        raise OperationFailure("PurchaseFailed", "The search was already purchased.")
    if search.status != "held" or search.expires_at is None or search.expires_at <= now:
        raise OperationFailure("ReservationExpired", "The search expired before the purchase; search again.")
    rows = repository.lock_search_holds(session, search, now)
    if {r.phone_number for r in rows} != set(search.phone_numbers or []):
        raise OperationFailure("ReservationExpired", "Some numbers of the search are no longer held.")
    caps = {r.phone_number: Capabilities(search.calling, search.sms) for r in rows}
    purchase_numbers(session, search.resource_id, rows, caps, operation.id, now)
    search.status = "purchased"
