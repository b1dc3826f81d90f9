"""Helpers shared by the numbers API tests: a search body and a search run to completion."""

from __future__ import annotations

from typing import Any

from tests.gateway.numbers.conftest import Tenant
from tests.gateway.numbers.test_api_flow import poll

SEARCH = "/availablePhoneNumbers/countries/US/:search"


def search_body(**overrides: Any) -> dict[str, Any]:
    return {
        "phoneNumberType": "geographic",
        "assignmentType": "application",
        "capabilities": {"calling": "inbound", "sms": "none"},
        "areaCode": "425",
        "quantity": 1,
        **overrides,
    }


def searched(tenant: Tenant, **overrides: Any) -> tuple[str, dict[str, Any]]:
    response = tenant.request("POST", SEARCH, search_body(**overrides))
    assert response.status_code == 202, response.text
    return response.headers["search-id"], poll(tenant, response.headers["Operation-Location"])
