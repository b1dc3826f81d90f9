"""Reservations: ownership, expiry and lazy release of lapsed holds (gateway/numbers/reservations.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from gateway.core.db import Database, utcnow
from gateway.numbers.models import InventoryNumber
from tests.gateway.numbers.conftest import Tenant


def test_reservation_rules(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any], database: Database
) -> None:
    stock(per_area=2)
    alice, bob = make_tenant("alice"), make_tenant("bob")
    numbers = ["14252000000", "14252000001"]
    path = f"/availablePhoneNumbers/reservations/{uuid.uuid4()}"
    created = alice.request("PATCH", path, {"phoneNumbers": {numbers[0]: {}}})
    assert created.status_code == 201
    # Bob cannot take a number in Alice's reservation: 207 with a per-number error.
    other = bob.request(
        "PATCH", f"/availablePhoneNumbers/reservations/{uuid.uuid4()}", {"phoneNumbers": {numbers[0]: {}}}
    )
    assert other.status_code == 207
    assert other.json()["phoneNumbers"][numbers[0]]["error"]["code"] == "FailedToReserveNumber"
    # Expiry: 15 minutes after the last change, at most 2 hours after creation.
    with database.session() as session:
        from gateway.numbers.models import Reservation

        reservation = session.scalars(
            select(Reservation).where(Reservation.resource_id == alice.resource_id)
        ).one()
        reservation.created_at = utcnow() - timedelta(hours=1, minutes=55)
    extended = alice.request("PATCH", path, {"phoneNumbers": {numbers[1]: {}}})
    assert extended.status_code == 200
    with database.session() as session:
        reservation = session.scalars(
            select(Reservation).where(Reservation.resource_id == alice.resource_id)
        ).one()
        assert reservation.expires_at <= reservation.created_at + timedelta(hours=2)
        assert reservation.expires_at < utcnow() + timedelta(minutes=6)
        reservation.expires_at = utcnow() - timedelta(seconds=1)
        session.execute(
            update(InventoryNumber)
            .where(InventoryNumber.reservation_id == reservation.id)
            .values(free_at=reservation.expires_at)
        )
    assert alice.request("GET", path).json()["status"] == "expired"
    assert alice.request("PATCH", path, {"phoneNumbers": {}}).status_code == 409
    assert alice.request("POST", f"{path}/:purchase", {}).json()["error"]["code"] == "ReservationExpired"
    # The lapsed hold is lazily available again to Bob.
    again = bob.request(
        "PATCH", f"/availablePhoneNumbers/reservations/{uuid.uuid4()}", {"phoneNumbers": {numbers[0]: {}}}
    )
    assert again.status_code == 201
