"""Purchased numbers of the tenant API: who owns a number (SMS sender checks, inbound routing),
a resource's numbers, and capability updates (the ``updatePhoneNumberCapabilities`` operation),
which never exceed what the inventory row offers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from gateway.core.errors import BadRequest, NotFound
from gateway.core.settings import Settings
from gateway.numbers import operations
from gateway.numbers.acs import cost_json, path_number
from gateway.numbers.models import NumberOperation, PurchasedNumber
from gateway.numbers.operations import OperationFailure, handler
from gateway.numbers.repository import purchased as repository
from gateway.numbers.repository.paging import Page
from gateway.numbers.rules import CAPABILITY_VALUES, capability_satisfies, number_id

log = structlog.get_logger(__name__)


def owned_number(session: Session, resource_id: str, e164: str) -> PurchasedNumber | None:
    """The number if ``resource_id`` owns it (for SMS sender checks and inbound routing)."""
    return repository.owned_number(session, resource_id, e164)


def number_owner(session: Session, e164: str) -> PurchasedNumber | None:
    """Who owns ``e164`` at all (for routing inbound SMS and calls to a resource)."""
    return repository.number_owner(session, e164)


def get_owned(session: Session, resource_id: str, raw: str, *, for_update: bool = False) -> PurchasedNumber:
    e164 = path_number(raw)
    number = repository.owned_number(session, resource_id, e164, for_update=for_update)
    if number is None:
        raise NotFound(
            f"Phone number {e164} is not purchased by this resource.", "phoneNumber", "PhoneNumberNotFound"
        )
    return number


def list_owned(session: Session, resource_id: str, skip: int, top: int) -> Page[PurchasedNumber]:
    return repository.owned_page(session, resource_id, skip, top)


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
    inventory = repository.inventory_number(session, number.phone_number)
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
    number = repository.owned_number(session, operation.resource_id, operation.target, for_update=True)
    if number is None:
        raise OperationFailure("UnknownErrorCode", "The number is no longer owned by this resource.")
    number.calling = operation.payload["calling"]
    number.sms = operation.payload["sms"]
    log.info("capabilities updated", resource_id=operation.resource_id, phone_number=number.phone_number)
