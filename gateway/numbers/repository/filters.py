"""SQL predicates on inventory: availability, an operator-facing status, and the search filter
(the SQL form of ``rules.matches``; the property tests check that the two agree).

Expiry of holds and quarantines is lazy: availability is ``free_at <= now`` (see models.py), so
a lapsed hold needs no sweeper; the next search or browse simply sees the number again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from gateway.numbers.models import InventoryNumber
from gateway.numbers.rules import NumberFilter, offered_values_for


def available_predicate(now: datetime) -> ColumnElement[bool]:
    return InventoryNumber.free_at <= now


def status_predicate(status: str, now: datetime) -> ColumnElement[bool]:
    """Numbers whose effective status (``inventory.effective_status``) is ``status``."""
    if status == "available":
        return available_predicate(now)
    if status == "purchased":
        return InventoryNumber.status == "purchased"
    return and_(InventoryNumber.status == status, InventoryNumber.free_at > now)


def filter_clauses(
    wanted: NumberFilter, now: datetime, entity: Any = InventoryNumber
) -> list[ColumnElement[bool]]:
    """SQL for ``rules.matches``; ``entity`` may be an alias of InventoryNumber over a subquery."""
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
