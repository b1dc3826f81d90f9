"""Releasing numbers: DELETE of a purchased number (the ``releasePhoneNumber`` operation) and the
numbers of a deleted resource. Released numbers rest in quarantine
(``numbers_release_quarantine_minutes``) before they are available again; removing the
purchased_numbers row is what removes their routing (inbound SMS and calls, sender checks)."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session

from gateway.core.settings import Settings
from gateway.numbers import operations
from gateway.numbers.metrics import NUMBERS_RELEASED
from gateway.numbers.models import NumberOperation
from gateway.numbers.operations import handler
from gateway.numbers.purchased import get_owned
from gateway.numbers.repository import holds
from gateway.numbers.repository import purchased as repository

log = structlog.get_logger(__name__)


def start_release(session: Session, resource_id: str, raw: str) -> NumberOperation:
    number = get_owned(session, resource_id, raw)
    return operations.create_operation(session, resource_id, "releasePhoneNumber", number.phone_number)


@handler("releasePhoneNumber")
def _run_release(session: Session, operation: NumberOperation, settings: Settings, now: datetime) -> None:
    number = repository.owned_number(session, operation.resource_id, operation.target, for_update=True)
    if number is None:
        return  # already released (a re-run)
    inventory = repository.inventory_number(session, number.phone_number, for_update=True)
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


def forget_resource(session: Session, resource_id: str, now: datetime, quarantine: timedelta) -> int:
    """Before a resource is deleted: its numbers go to quarantine (as if released) and its holds
    end, so that nothing stays purchased by, or held for, a resource that no longer exists."""
    owned = repository.owned_phone_numbers(session, resource_id)
    repository.delete_owned(session, resource_id)
    if owned:
        repository.return_to_inventory(session, owned, now, quarantine)
    holds.release_holds_of(session, resource_id, now)
    log.info("numbers of a deleted resource released", resource_id=resource_id, count=len(owned))
    return len(owned)
