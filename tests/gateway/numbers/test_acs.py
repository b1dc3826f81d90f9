"""Shared wire rules of the Phone Numbers API (gateway/numbers/acs.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.core.errors import BadRequest
from gateway.core.settings import Settings
from gateway.numbers.acs import API_VERSION, absolute, cost_json, country, not_resell_required, path_number


def test_absolute_links_carry_the_api_version_and_drop_missing_values() -> None:
    link = absolute("http://gw.test/", "/phoneNumbers/+14255550123", skip=100, top=None)
    assert link == f"http://gw.test/phoneNumbers/%2B14255550123?skip=100&api-version={API_VERSION}"
    assert absolute("http://gw.test", "/availablePhoneNumbers/:purchase").endswith(
        f"/availablePhoneNumbers/:purchase?api-version={API_VERSION}"
    )


@pytest.mark.parametrize(("raw", "expected"), [("us", "US"), (" GB ", "GB"), ("De", "DE")])
def test_country_codes_are_case_insensitive(raw: str, expected: str) -> None:
    assert country(raw) == expected


@pytest.mark.parametrize("raw", ["XX", "USA", "", "U"])
def test_unknown_country_codes_are_rejected(raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        country(raw)
    assert caught.value.code == "InvalidCountryCode"


def test_path_numbers() -> None:
    assert path_number("14255550123") == "+14255550123"
    assert path_number("+14255550123") == "+14255550123"
    with pytest.raises(BadRequest) as caught:
        path_number("+1425555abc")
    assert caught.value.code == "InvalidPhoneNumber"


def test_cost_and_not_resell() -> None:
    assert cost_json(Decimal("1.50"), "USD") == {
        "amount": 1.5,
        "currencyCode": "USD",
        "billingFrequency": "monthly",
    }
    assert cost_json(None, None) == {"amount": 0.0, "currencyCode": "", "billingFrequency": "monthly"}
    settings = Settings(numbers_not_resell_countries=["gb"])
    assert not_resell_required(settings, "GB")
    assert not not_resell_required(settings, "US")
