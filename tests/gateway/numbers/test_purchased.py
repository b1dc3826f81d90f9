"""Purchased numbers: who owns a number (gateway/numbers/purchased.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from gateway.core.db import Database
from gateway.numbers import purchased
from tests.gateway.numbers.conftest import Tenant
from tests.gateway.numbers.support import searched
from tests.gateway.numbers.test_api_flow import poll


def test_owned_number_lookup(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any], database: Database
) -> None:
    stock(per_area=1)
    alice, bob = make_tenant("alice"), make_tenant("bob")
    search_id, _ = searched(alice)
    purchase = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    poll(alice, purchase.headers["Operation-Location"])
    number = alice.request("GET", "/phoneNumbers").json()["phoneNumbers"][0]["phoneNumber"]
    with database.session() as session:
        owned = purchased.owned_number(session, alice.resource_id, number)
        assert owned is not None
        assert (owned.resource_id, owned.calling, owned.sms) == (alice.resource_id, "inbound", "none")
        assert owned.purchase_date is not None
        assert purchased.owned_number(session, bob.resource_id, number) is None
        assert purchased.number_owner(session, number) is not None
