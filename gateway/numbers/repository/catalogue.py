"""Reads of available inventory: the countries, localities, area codes and offerings that have
numbers for sale, and the windows and lookups behind browse. Nothing here locks a row."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from gateway.numbers.models import InventoryNumber
from gateway.numbers.repository.filters import available_predicate, filter_clauses, prefix_high
from gateway.numbers.rules import NumberFilter

BROWSE_WINDOW = 2000


class Locality(NamedTuple):
    name: str
    administrative_division: str


class Offering(NamedTuple):
    """One group of available numbers alike in type, assignment, capabilities and currency."""

    phone_number_type: str
    assignment_type: str
    calling: str
    sms: str
    currency_code: str
    min_cost: Decimal | None


def countries(session: Session, now: datetime) -> list[str]:
    return list(
        session.scalars(
            select(InventoryNumber.country_code)
            .where(available_predicate(now))
            .distinct()
            .order_by(InventoryNumber.country_code)
        ).all()
    )


def localities(
    session: Session, country_code: str, now: datetime, phone_number_type: str | None, division: str | None
) -> list[Locality]:
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
    return [Locality(locality, admin) for locality, admin in rows]


def area_codes(
    session: Session,
    country_code: str,
    now: datetime,
    phone_number_type: str,
    assignment_type: str | None,
    locality: str | None,
    division: str | None,
) -> list[str]:
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
    return list(session.scalars(query.distinct().order_by(InventoryNumber.area_code)).all())


def offerings(
    session: Session,
    country_code: str,
    now: datetime,
    phone_number_type: str | None,
    assignment_type: str | None,
) -> list[Offering]:
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
    return [Offering(*row) for row in rows]


def window_matches(session: Session, wanted: NumberFilter, now: datetime, pivot: str, seed: str) -> list[str]:
    """Numbers matching ``wanted`` among the ``BROWSE_WINDOW`` numbers from ``pivot`` on (by
    primary key, within ``seed``'s prefix range): a bounded index range scan."""
    # The LIMIT inside the subquery keeps the planner from scanning the whole prefix range.
    window = aliased(
        InventoryNumber,
        select(InventoryNumber)
        .where(InventoryNumber.phone_number >= pivot, InventoryNumber.phone_number <= prefix_high(seed))
        .order_by(InventoryNumber.phone_number)
        .limit(BROWSE_WINDOW)
        .subquery(),
    )
    return list(session.scalars(select(window.phone_number).where(*filter_clauses(wanted, now, window))))


def numbers_by_id(session: Session, phone_numbers: list[str]) -> list[InventoryNumber]:
    return list(
        session.scalars(select(InventoryNumber).where(InventoryNumber.phone_number.in_(phone_numbers)))
    )


def first_matches(
    session: Session, wanted: NumberFilter, now: datetime, excluded: Collection[str], limit: int
) -> list[InventoryNumber]:
    """Up to ``limit`` available numbers matching ``wanted`` (in no particular order), other than
    ``excluded``: browse's fallback through the search index when windows found too few."""
    query = select(InventoryNumber).where(*filter_clauses(wanted, now))
    if excluded:
        query = query.where(InventoryNumber.phone_number.not_in(list(excluded)))
    return list(session.scalars(query.limit(limit)))
