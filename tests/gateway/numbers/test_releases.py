"""Releasing numbers: quarantine, and the numbers of a deleted resource (gateway/numbers/releases.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.numbers import purchased
from gateway.numbers.models import InventoryNumber
from tests.gateway.numbers.conftest import Tenant
from tests.gateway.numbers.support import searched
from tests.gateway.numbers.test_api_flow import poll


def test_deleting_a_resource_returns_its_numbers(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any], database: Database
) -> None:
    from gateway.resources import service as resources

    stock(per_area=1)
    alice = make_tenant("alice")
    search_id, _ = searched(alice)
    purchase = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    poll(alice, purchase.headers["Operation-Location"])
    _, held = searched(alice, areaCode="206")
    assert held["status"] == "succeeded"
    with database.session() as session:
        resources.delete_resource(session, "alice")
    with database.session() as session:
        rows = session.scalars(select(InventoryNumber)).all()
        assert {r.status for r in rows} <= {"available", "quarantined"}
        assert all(r.holder_resource_id is None for r in rows)


def test_released_number_rests_in_quarantine(
    client: TestClient,
    make_tenant: Callable[[str], Tenant],
    stock: Callable[..., Any],
    database: Database,
    settings: Settings,
) -> None:
    settings.numbers_release_quarantine_minutes = 60
    stock(per_area=1)
    alice, bob = make_tenant("alice"), make_tenant("bob")
    search_id, _ = searched(alice)
    purchase = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    poll(alice, purchase.headers["Operation-Location"])
    number = alice.request("GET", "/phoneNumbers").json()["phoneNumbers"][0]["phoneNumber"]
    release = alice.request("DELETE", f"/phoneNumbers/{number}")
    assert poll(alice, release.headers["Operation-Location"])["status"] == "succeeded"
    with database.session() as session:
        assert purchased.number_owner(session, number) is None  # routing gone at once
        row = session.get(InventoryNumber, number)
        assert row is not None
        assert row.status == "quarantined"
    assert searched(bob)[1]["error"]["code"] == "OutOfStock"
    with database.session() as session:  # the quarantine ends (lazily: nothing runs)
        session.execute(
            update(InventoryNumber)
            .where(InventoryNumber.phone_number == number)
            .values(free_at=utcnow() - timedelta(seconds=1))
        )
    assert searched(bob)[1]["status"] == "succeeded"
