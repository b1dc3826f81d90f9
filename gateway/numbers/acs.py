"""What the ACS Phone Numbers API (2025-06-01) concerns share: the api-version and absolute links,
the cost shape, path parameters (country codes, phone numbers) and the not-resell rule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import phonenumbers

from gateway.core.errors import BadRequest
from gateway.core.settings import Settings
from gateway.numbers.rules import InvalidPhoneNumber, parse_path_number

API_VERSION = "2025-06-01"


def absolute(base_url: str, path: str, **query: Any) -> str:
    """An absolute link to ``path`` with ``query`` (``None`` values left out) and the api-version."""
    params = {**{k: v for k, v in query.items() if v is not None}, "api-version": API_VERSION}
    return f"{base_url.rstrip('/')}{quote(path, safe='/:')}?{urlencode(params)}"


def country(code: str) -> str:
    """A path country code: ISO 3166 alpha-2 known to libphonenumber, case-insensitive."""
    upper = code.strip().upper()
    if len(upper) != 2 or upper not in phonenumbers.SUPPORTED_REGIONS:
        raise BadRequest(
            f"'{code}' is not a supported ISO 3166 country code.", "countryCode", "InvalidCountryCode"
        )
    return upper


def path_number(raw: str) -> str:
    """A path phone number in E.164 (400 InvalidPhoneNumber otherwise)."""
    try:
        return parse_path_number(raw)
    except InvalidPhoneNumber as exc:
        raise BadRequest(
            f"'{raw}' is not a phone number in E.164 format, like +14255550123.",
            "phoneNumber",
            "InvalidPhoneNumber",
        ) from exc


def not_resell_required(settings: Settings, country_code: str) -> bool:
    """Whether numbers of ``country_code`` are sold only with agreeToNotResell (a setting)."""
    return country_code.upper() in {c.upper() for c in settings.numbers_not_resell_countries}


def cost_json(amount: Decimal | None, currency: str | None) -> dict[str, Any]:
    return {"amount": float(amount or 0), "currencyCode": currency or "", "billingFrequency": "monthly"}
