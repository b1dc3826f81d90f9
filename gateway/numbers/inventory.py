"""The operator's inventory: the listing of numbers with their effective status, and carriers.

The SQL is in ``repository/inventory.py`` (and the predicates in ``repository/filters.py``);
this module checks the operator's input and shapes the JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.numbers.models import Carrier, InventoryNumber
from gateway.numbers.repository import inventory as repository
from gateway.numbers.repository.inventory import CarrierCount, InventoryPage
from gateway.numbers.rules import CARRIER_KINDS

STATUSES = ("available", "reserved", "purchased", "quarantined")


def effective_status(number: InventoryNumber, now: datetime) -> str:
    """The status the operator sees: a lapsed hold or quarantine is simply available (expiry is
    lazy, see ``repository/filters.py``); ``repository.filters.status_predicate`` is its SQL."""
    if number.status == "purchased":
        return "purchased"
    if number.free_at is not None and number.free_at <= now:
        return "available"
    return number.status


def list_numbers(
    session: Session,
    now: datetime,
    *,
    status: str | None = None,
    country_code: str | None = None,
    carrier: str | None = None,
    skip: int = 0,
    top: int = 100,
) -> InventoryPage:
    """A page of inventory (with each number's carrier name) and the total count matching."""
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}", "status")
    return repository.numbers_page(
        session,
        now,
        status=status,
        country_code=country_code.upper() if country_code is not None else None,
        carrier=carrier,
        skip=skip,
        top=top,
    )


def inventory_json(number: InventoryNumber, carrier_name: str, now: datetime) -> dict[str, Any]:
    return {
        "phoneNumber": number.phone_number,
        "countryCode": number.country_code,
        "phoneNumberType": number.phone_number_type,
        "assignmentType": number.assignment_type,
        "areaCode": number.area_code,
        "locality": number.locality,
        "administrativeDivision": number.administrative_division,
        "calling": number.calling,
        "sms": number.sms,
        "costAmount": float(number.cost_amount),
        "currencyCode": number.currency_code,
        "carrier": carrier_name,
        "status": effective_status(number, now),
        "heldUntil": number.free_at.isoformat()
        if number.status in ("reserved", "quarantined") and number.free_at and number.free_at > now
        else None,
        "resourceId": number.holder_resource_id if effective_status(number, now) != "available" else None,
    }


# Carriers ------------------------------------------------------------------------------------------


def create_carrier(session: Session, name: str, kind: str, notes: str = "") -> Carrier:
    name = name.strip()
    if not name or len(name) > 63:
        raise BadRequest("carrier name must be 1-63 characters", "name")
    if kind not in CARRIER_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(CARRIER_KINDS)}", "kind")
    if repository.carrier_id_named(session, name) is not None:
        raise Conflict(f"A carrier named '{name}' already exists.", "name", code="CarrierAlreadyExists")
    carrier = Carrier(name=name, kind=kind, notes=notes)
    session.add(carrier)
    session.flush()
    return carrier


def list_carriers(session: Session) -> list[CarrierCount]:
    return repository.carriers_with_counts(session)


def get_carrier(session: Session, name: str) -> Carrier:
    carrier = repository.carrier_by_name_or_id(session, name)
    if carrier is None:
        raise NotFound(f"No carrier '{name}'.", "carrier", code="CarrierNotFound")
    return carrier


def delete_carrier(session: Session, name: str) -> None:
    carrier = get_carrier(session, name)
    in_use = repository.carrier_number_count(session, carrier.id)
    if in_use:
        raise Conflict(
            f"Carrier '{carrier.name}' still has {in_use} numbers in inventory.",
            "carrier",
            code="CarrierInUse",
        )
    session.delete(carrier)


def carrier_json(carrier: Carrier, numbers: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": carrier.id,
        "name": carrier.name,
        "kind": carrier.kind,
        "notes": carrier.notes,
        "createdAt": carrier.created_at.isoformat(),
    }
    if numbers is not None:
        data["numbers"] = numbers
    return data
