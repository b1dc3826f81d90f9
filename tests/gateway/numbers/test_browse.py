"""Browse: random, filtered samples of available numbers (gateway/numbers/browse.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.gateway.numbers.conftest import Tenant


def test_browse_is_random_and_filtered(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any]
) -> None:
    stock(per_area=30, toll_free=5)
    alice = make_tenant("alice")
    seen: set[str] = set()
    for _ in range(10):
        response = alice.request(
            "POST", "/availablePhoneNumbers/countries/US/:browse", {"phoneNumberType": "geographic"}
        )
        numbers = [n["phoneNumber"] for n in response.json()["phoneNumbers"]]
        assert len(numbers) == 20
        assert len(set(numbers)) == 20
        assert all(n[:5] in ("+1425", "+1206") for n in numbers)
        seen |= set(numbers)
    assert len(seen) > 20, "ten browses returned the very same numbers"
    toll_free = alice.request(
        "POST",
        "/availablePhoneNumbers/countries/US/:browse",
        {"phoneNumberType": "tollFree", "phoneNumberPrefixes": ["+1800"]},
    ).json()["phoneNumbers"]
    assert len(toll_free) == 5
    bad = alice.request(
        "POST",
        "/availablePhoneNumbers/countries/US/:browse",
        {"phoneNumberType": "tollFree", "phoneNumberPrefixes": ["18x"]},
    )
    assert bad.status_code == 400
