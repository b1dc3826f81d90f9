"""SQL of the operator's view of inventory: the listing (each number with its carrier's name)
and carriers with their number counts. Nothing here locks a row."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from gateway.numbers.models import Carrier, InventoryNumber
from gateway.numbers.repository.filters import status_predicate


class ListedNumber(NamedTuple):
    """An inventory row and the name of its carrier."""

    number: InventoryNumber
    carrier_name: str


class InventoryPage(NamedTuple):
    """One page of the listing and how many numbers match in all."""

    rows: list[ListedNumber]
    total: int


class CarrierCount(NamedTuple):
    """A carrier and how many inventory numbers it has."""

    carrier: Carrier
    numbers: int


def numbers_page(
    session: Session,
    now: datetime,
    *,
    status: str | None,
    country_code: str | None,
    carrier: str | None,
    skip: int,
    top: int,
) -> InventoryPage:
    """Numbers by phone number, with the total count matching (each filter is optional)."""
    clauses: list[ColumnElement[bool]] = []
    if status is not None:
        clauses.append(status_predicate(status, now))
    if country_code is not None:
        clauses.append(InventoryNumber.country_code == country_code)
    if carrier is not None:
        clauses.append(Carrier.name == carrier)
    base = select(InventoryNumber, Carrier.name).join(Carrier, Carrier.id == InventoryNumber.carrier_id)
    if clauses:
        base = base.where(*clauses)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(InventoryNumber.phone_number).offset(skip).limit(top)).all()
    return InventoryPage([ListedNumber(row[0], row[1]) for row in rows], total)


def carrier_id_named(session: Session, name: str) -> str | None:
    return session.scalar(select(Carrier.id).where(Carrier.name == name))


def carrier_by_name_or_id(session: Session, name_or_id: str) -> Carrier | None:
    return session.scalar(select(Carrier).where(or_(Carrier.name == name_or_id, Carrier.id == name_or_id)))


def carriers_with_counts(session: Session) -> list[CarrierCount]:
    """Every carrier by name, with its number of inventory rows (zero for none)."""
    counts = (
        select(InventoryNumber.carrier_id, func.count().label("n"))
        .group_by(InventoryNumber.carrier_id)
        .subquery()
    )
    rows = session.execute(
        select(Carrier, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.carrier_id == Carrier.id)
        .order_by(Carrier.name)
    ).all()
    return [CarrierCount(row[0], int(row[1])) for row in rows]


def carrier_number_count(session: Session, carrier_id: str) -> int:
    count = session.scalar(
        select(func.count()).select_from(InventoryNumber).where(InventoryNumber.carrier_id == carrier_id)
    )
    return count or 0


def carrier_ids_by_name(session: Session) -> dict[str, str]:
    return {carrier.name: carrier.id for carrier in session.scalars(select(Carrier))}
