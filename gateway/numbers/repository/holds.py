"""SQL of holds: searches and reservations, and the inventory rows they lock.

Numbers are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (``lock_available``),
so concurrent buyers never get the same number; SQLite serialises writers (BEGIN IMMEDIATE). The
lock order of these statements is part of the contract: keep it when changing them.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.numbers.models import InventoryNumber, NumberSearch, Reservation, ReservationNumber
from gateway.numbers.repository.filters import filter_clauses
from gateway.numbers.repository.paging import Page, page
from gateway.numbers.rules import NumberFilter

# Searches -------------------------------------------------------------------------------------------


def lock_available(
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


def hold_for_search(
    session: Session, phone_numbers: list[str], search: NumberSearch, expires: datetime, now: datetime
) -> None:
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.phone_number.in_(phone_numbers))
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


def release_search_numbers(session: Session, search_id: str, now: datetime) -> None:
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.search_id == search_id, InventoryNumber.status == "reserved")
        .values(status="available", free_at=now, holder_resource_id=None, search_id=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def find_search(session: Session, search_id: str) -> NumberSearch | None:
    return session.get(NumberSearch, search_id)


def lock_search(session: Session, search_id: str) -> NumberSearch | None:
    return session.get(NumberSearch, search_id, with_for_update=True)


def search_of(session: Session, resource_id: str, search_id: str) -> NumberSearch | None:
    return session.scalar(
        select(NumberSearch).where(NumberSearch.id == search_id, NumberSearch.resource_id == resource_id)
    )


def lock_search_holds(session: Session, search: NumberSearch, now: datetime) -> list[InventoryNumber]:
    """The inventory rows ``search`` still holds, locked for its purchase."""
    return list(
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


# Reservations ---------------------------------------------------------------------------------------


class ReservedNumber(NamedTuple):
    """A number of a reservation: the reservation's item and the inventory row."""

    item: ReservationNumber
    number: InventoryNumber


def reservation_of(
    session: Session, resource_id: str, reservation_id: str, *, for_update: bool = False
) -> Reservation | None:
    query = select(Reservation).where(
        Reservation.id == reservation_id, Reservation.resource_id == resource_id
    )
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def lock_reservation_by_id(session: Session, reservation_id: str) -> Reservation | None:
    """Any resource's reservation with this id, locked (PATCH checks the owner itself)."""
    return session.scalar(select(Reservation).where(Reservation.id == reservation_id).with_for_update())


def find_reservation(session: Session, reservation_id: str) -> Reservation | None:
    return session.get(Reservation, reservation_id)


def lock_reservation(session: Session, reservation_id: str) -> Reservation | None:
    return session.get(Reservation, reservation_id, with_for_update=True)


def reserved_numbers(session: Session, reservation_id: str) -> list[ReservedNumber]:
    rows = session.execute(
        select(ReservationNumber, InventoryNumber)
        .join(InventoryNumber, InventoryNumber.phone_number == ReservationNumber.phone_number)
        .where(ReservationNumber.reservation_id == reservation_id)
        .order_by(ReservationNumber.phone_number)
    ).all()
    return [ReservedNumber(item, number) for item, number in rows]


def reservation_phone_numbers(session: Session, reservation_id: str) -> list[str]:
    return list(
        session.scalars(
            select(ReservationNumber.phone_number).where(ReservationNumber.reservation_id == reservation_id)
        )
    )


def reservation_items(session: Session, reservation_id: str) -> list[ReservationNumber]:
    return list(
        session.scalars(select(ReservationNumber).where(ReservationNumber.reservation_id == reservation_id))
    )


def reservation_countries(session: Session, reservation_id: str) -> set[str]:
    return set(
        session.scalars(
            select(InventoryNumber.country_code)
            .join(ReservationNumber, ReservationNumber.phone_number == InventoryNumber.phone_number)
            .where(ReservationNumber.reservation_id == reservation_id)
        )
    )


def lock_number(session: Session, e164: str) -> InventoryNumber | None:
    """One inventory row, locked whatever its state (the caller checks availability)."""
    return session.scalar(
        select(InventoryNumber).where(InventoryNumber.phone_number == e164).with_for_update()
    )


def extend_reservation_holds(session: Session, reservation: Reservation) -> None:
    """Every hold of the reservation lasts until its (new) expiry."""
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.reservation_id == reservation.id, InventoryNumber.status == "reserved")
        .values(free_at=reservation.expires_at)
        .execution_options(synchronize_session=False)
    )


def release_reserved(session: Session, reservation_id: str, e164: str, now: datetime) -> None:
    """Take one number out of a reservation and make it available again."""
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


def delete_old_reservations(session: Session, resource_id: str, created_before: datetime) -> None:
    """Delete the resource's reservations created before ``created_before``, unless submitted."""
    session.execute(
        delete(Reservation).where(
            Reservation.resource_id == resource_id,
            Reservation.created_at < created_before,
            Reservation.status != "submitted",
        )
    )


def reservations_page(session: Session, resource_id: str, skip: int, top: int) -> Page[Reservation]:
    query = (
        select(Reservation)
        .where(Reservation.resource_id == resource_id)
        .order_by(Reservation.created_at, Reservation.id)
    )
    return page(session, query, skip, top)


def lock_reservation_holds(session: Session, reservation_id: str, now: datetime) -> list[InventoryNumber]:
    """The inventory rows the reservation still holds, locked for its purchase."""
    return list(
        session.scalars(
            select(InventoryNumber)
            .where(
                InventoryNumber.reservation_id == reservation_id,
                InventoryNumber.status == "reserved",
                InventoryNumber.free_at > now,
            )
            .with_for_update()
        )
    )


def release_holds_of(session: Session, resource_id: str, now: datetime) -> None:
    """End every hold (search or reservation) a resource has on inventory."""
    session.execute(
        update(InventoryNumber)
        .where(InventoryNumber.holder_resource_id == resource_id, InventoryNumber.status == "reserved")
        .values(status="available", free_at=now, holder_resource_id=None, search_id=None, reservation_id=None)
        .execution_options(synchronize_session=False)
    )
