"""SQL of purchased numbers: who owns a number, a resource's numbers, and returning numbers to
inventory (release, quarantine, a deleted resource)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.numbers.models import InventoryNumber, PurchasedNumber
from gateway.numbers.repository.paging import Page, page


def owned_number(
    session: Session, resource_id: str, e164: str, *, for_update: bool = False
) -> PurchasedNumber | None:
    query = select(PurchasedNumber).where(
        PurchasedNumber.phone_number == e164, PurchasedNumber.resource_id == resource_id
    )
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def number_owner(session: Session, e164: str) -> PurchasedNumber | None:
    return session.get(PurchasedNumber, e164)


def owned_page(session: Session, resource_id: str, skip: int, top: int) -> Page[PurchasedNumber]:
    query = (
        select(PurchasedNumber)
        .where(PurchasedNumber.resource_id == resource_id)
        .order_by(PurchasedNumber.purchase_date, PurchasedNumber.phone_number)
    )
    return page(session, query, skip, top)


def inventory_number(session: Session, e164: str, *, for_update: bool = False) -> InventoryNumber | None:
    if for_update:
        return session.get(InventoryNumber, e164, with_for_update=True)
    return session.get(InventoryNumber, e164)


def owned_phone_numbers(session: Session, resource_id: str) -> list[str]:
    return list(
        session.scalars(
            select(PurchasedNumber.phone_number).where(PurchasedNumber.resource_id == resource_id)
        )
    )


def delete_owned(session: Session, resource_id: str) -> None:
    session.execute(delete(PurchasedNumber).where(PurchasedNumber.resource_id == resource_id))


def return_to_inventory(
    session: Session, phone_numbers: list[str], now: datetime, quarantine: timedelta
) -> None:
    """Numbers no longer owned rest in quarantine for ``quarantine`` (available at once if zero)."""
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.phone_number.in_(phone_numbers))
        .values(
            status="quarantined" if quarantine else "available",
            free_at=now + quarantine,
            holder_resource_id=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
