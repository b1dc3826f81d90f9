"""Inventory queries shared by the operator side and the tenant API.

Expiry of holds and quarantines is lazy: availability is ``free_at <= now`` (see models.py), so a
lapsed hold needs no sweeper; the next search or browse simply sees the number again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.numbers.models import Carrier, InventoryNumber
from gateway.numbers.rules import CARRIER_KINDS, NumberFilter, offered_values_for

STATUSES = ("available", "reserved", "purchased", "quarantined")


def available_predicate(now: datetime) -> ColumnElement[bool]:
    return InventoryNumber.free_at <= now


def status_predicate(status: str, now: datetime) -> ColumnElement[bool]:
    if status == "available":
        return available_predicate(now)
    if status == "purchased":
        return InventoryNumber.status == "purchased"
    return and_(InventoryNumber.status == status, InventoryNumber.free_at > now)


def effective_status(number: InventoryNumber, now: datetime) -> str:
    if number.status == "purchased":
        return "purchased"
    if number.free_at is not None and number.free_at <= now:
        return "available"
    return number.status


def filter_clauses(
    wanted: NumberFilter, now: datetime, entity: Any = InventoryNumber
) -> list[ColumnElement[bool]]:
    """SQL for ``rules.matches`` (the property tests check that the two agree); ``entity`` may be
    an alias of InventoryNumber over a subquery."""
    n = entity
    clauses: list[ColumnElement[bool]] = [
        n.country_code == wanted.country_code,
        n.phone_number_type == wanted.phone_number_type,
    ]
    if wanted.assignment_type is not None:
        clauses.append(n.assignment_type == wanted.assignment_type)
    if wanted.area_code is not None:
        clauses.append(n.area_code == wanted.area_code)
    clauses.append(n.free_at <= now)
    if wanted.calling is not None:
        clauses.append(n.calling.in_(offered_values_for(wanted.calling)))
    if wanted.sms is not None:
        clauses.append(n.sms.in_(offered_values_for(wanted.sms)))
    if wanted.prefixes:
        # Ranges rather than LIKE: the primary key serves them under any collation, and for
        # digit-only E.164 strings "+<prefix>" <= n <= "+<prefix>99..." is exactly "starts with".
        clauses.append(
            or_(
                *(
                    and_(
                        n.phone_number >= "+" + p,
                        n.phone_number <= prefix_high(p),
                    )
                    for p in wanted.prefixes
                )
            )
        )
    return clauses


def prefix_high(prefix: str) -> str:
    """The greatest E.164 string starting with ``+prefix`` (digits only)."""
    return "+" + prefix + "9" * max(0, 15 - len(prefix))


def list_numbers(
    session: Session,
    now: datetime,
    *,
    status: str | None = None,
    country_code: str | None = None,
    carrier: str | None = None,
    skip: int = 0,
    top: int = 100,
) -> tuple[list[tuple[InventoryNumber, str]], int]:
    """A page of inventory (with each number's carrier name) and the total count matching."""
    clauses: list[ColumnElement[bool]] = []
    if status is not None:
        if status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}", "status")
        clauses.append(status_predicate(status, now))
    if country_code is not None:
        clauses.append(InventoryNumber.country_code == country_code.upper())
    if carrier is not None:
        clauses.append(Carrier.name == carrier)
    base = select(InventoryNumber, Carrier.name).join(Carrier, Carrier.id == InventoryNumber.carrier_id)
    if clauses:
        base = base.where(*clauses)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(InventoryNumber.phone_number).offset(skip).limit(top)).all()
    return [(row[0], row[1]) for row in rows], total


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
    if session.scalar(select(Carrier.id).where(Carrier.name == name)) is not None:
        raise Conflict(f"A carrier named '{name}' already exists.", "name", code="CarrierAlreadyExists")
    carrier = Carrier(name=name, kind=kind, notes=notes)
    session.add(carrier)
    session.flush()
    return carrier


def list_carriers(session: Session) -> Sequence[tuple[Carrier, int]]:
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
    return [(row[0], int(row[1])) for row in rows]


def get_carrier(session: Session, name: str) -> Carrier:
    carrier = session.scalar(select(Carrier).where(or_(Carrier.name == name, Carrier.id == name)))
    if carrier is None:
        raise NotFound(f"No carrier '{name}'.", "carrier", code="CarrierNotFound")
    return carrier


def delete_carrier(session: Session, name: str) -> None:
    carrier = get_carrier(session, name)
    in_use = session.scalar(
        select(func.count()).select_from(InventoryNumber).where(InventoryNumber.carrier_id == carrier.id)
    )
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
