"""The tenant API in-process (both databases): search/purchase/list/update/release and
browse/reserve/purchase, with the spec's status codes and headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.gateway.numbers.conftest import Tenant


def poll(tenant: Tenant, operation_location: str) -> dict[str, Any]:
    for _ in range(50):
        body: dict[str, Any] = tenant.request("GET", operation_location).json()
        if body["status"] in ("succeeded", "failed"):
            return body
    raise AssertionError(f"operation did not finish: {body}")


def test_search_purchase_list_update_release(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any]
) -> None:
    stock(per_area=5)
    alice = make_tenant("alice")
    response = alice.request(
        "POST",
        "/availablePhoneNumbers/countries/US/:search",
        {
            "phoneNumberType": "geographic",
            "assignmentType": "application",
            "capabilities": {"calling": "inbound", "sms": "inbound+outbound"},
            "areaCode": "425",
            "quantity": 2,
        },
    )
    assert response.status_code == 202, response.text
    search_id = response.headers["search-id"]
    assert response.headers["operation-id"] == f"search_{search_id}"
    assert response.headers["Location"].startswith(
        "https://numbers.test/availablePhoneNumbers/searchResults/"
    )
    operation = poll(alice, response.headers["Operation-Location"])
    assert operation["status"] == "succeeded", operation
    assert operation["operationType"] == "search"
    result = alice.request("GET", response.headers["Location"]).json()
    assert result["searchId"] == search_id
    assert len(result["phoneNumbers"]) == 2
    assert all(n.startswith("+1425") for n in result["phoneNumbers"])
    assert result["capabilities"] == {"calling": "inbound", "sms": "inbound+outbound"}
    assert result["cost"] == {"amount": 1.0, "currencyCode": "USD", "billingFrequency": "monthly"}

    purchase = alice.request("POST", "/availablePhoneNumbers/:purchase", {"searchId": search_id})
    assert purchase.status_code == 202, purchase.text
    assert purchase.headers["operation-id"].startswith("purchase_")
    assert poll(alice, purchase.headers["Operation-Location"])["status"] == "succeeded"

    listed = alice.request("GET", "/phoneNumbers").json()
    assert sorted(n["phoneNumber"] for n in listed["phoneNumbers"]) == result["phoneNumbers"]
    first = result["phoneNumbers"][0]
    got = alice.request("GET", f"/phoneNumbers/{first.replace('+', '%2B')}").json()
    assert got["capabilities"] == {"calling": "inbound", "sms": "inbound+outbound"}
    assert got["id"] == first[1:]

    update = alice.request("PATCH", f"/phoneNumbers/{first}/capabilities", {"calling": "inbound+outbound"})
    assert update.status_code == 202, update.text
    assert poll(alice, update.headers["Operation-Location"])["status"] == "succeeded"
    got = alice.request("GET", f"/phoneNumbers/{first}").json()
    assert got["capabilities"] == {"calling": "inbound+outbound", "sms": "inbound+outbound"}

    release = alice.request("DELETE", f"/phoneNumbers/{first}")
    assert release.status_code == 202, release.text
    assert poll(alice, release.headers["Operation-Location"])["status"] == "succeeded"
    assert alice.request("GET", f"/phoneNumbers/{first}").status_code == 404
    assert len(alice.request("GET", "/phoneNumbers").json()["phoneNumbers"]) == 1


def test_browse_reserve_purchase(
    client: TestClient, make_tenant: Callable[[str], Tenant], stock: Callable[..., Any]
) -> None:
    stock(per_area=5)
    bob = make_tenant("bob")
    browse = bob.request(
        "POST",
        "/availablePhoneNumbers/countries/US/:browse",
        {
            "phoneNumberType": "geographic",
            "capabilities": {"calling": "outbound"},
            "phoneNumberPrefixes": ["1206"],
        },
    )
    assert browse.status_code == 200, browse.text
    found = browse.json()["phoneNumbers"]
    assert len(found) == 5
    assert all(n["phoneNumber"].startswith("+1206") and n["status"] == "available" for n in found)
    reservation_id = "65c18c7f-8074-4efb-a572-e0df127a9964"
    path = f"/availablePhoneNumbers/reservations/{reservation_id}"
    created = bob.request("PATCH", path, {"phoneNumbers": {n["id"]: n for n in found[:2]}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "active"
    assert set(body["phoneNumbers"]) == {n["id"] for n in found[:2]}
    updated = bob.request("PATCH", path, {"phoneNumbers": {found[0]["id"]: None, found[2]["id"]: found[2]}})
    assert updated.status_code == 200, updated.text
    assert set(updated.json()["phoneNumbers"]) == {found[1]["id"], found[2]["id"]}
    partial = bob.request("PATCH", path, {"phoneNumbers": {"19999999999": {"countryCode": "US"}}})
    assert partial.status_code == 207, partial.text
    assert partial.json()["phoneNumbers"]["19999999999"]["status"] == "error"
    listed = bob.request("GET", "/availablePhoneNumbers/reservations").json()
    assert [r["id"] for r in listed["reservations"]] == [reservation_id]
    assert "phoneNumbers" not in listed["reservations"][0]
    purchase = bob.request("POST", f"{path}/:purchase", {})
    assert purchase.status_code == 202, purchase.text
    assert purchase.headers["reservation-purchase-id"]
    assert poll(bob, purchase.headers["Operation-Location"])["status"] == "succeeded"
    owned = sorted(n["id"] for n in bob.request("GET", "/phoneNumbers").json()["phoneNumbers"])
    assert owned == sorted([found[1]["id"], found[2]["id"]])
    assert bob.request("GET", path).json()["status"] == "completed"
