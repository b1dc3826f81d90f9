"""Operator information of the tenant API (POST operatorInformation/:search): format and operator
data from libphonenumber's own metadata; no database, and unknown fields stay empty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import phonenumbers
from phonenumbers import carrier as pn_carrier

from gateway.core.errors import BadRequest

_OPERATOR_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "geographic",
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.UNKNOWN: "unknown",
}


def operator_information(raw_numbers: Sequence[str], include_details: bool) -> list[dict[str, Any]]:
    """Format and operator data from libphonenumber's own metadata; unknown fields stay empty."""
    if not raw_numbers:
        raise BadRequest("phoneNumbers must list at least one number.", "phoneNumbers")
    if len(raw_numbers) > 100:
        raise BadRequest("At most 100 phone numbers per request.", "phoneNumbers")
    results = []
    for index, raw in enumerate(raw_numbers):
        try:
            parsed = phonenumbers.parse(raw if raw.startswith("+") else "+" + raw, None)
        except phonenumbers.NumberParseException as exc:
            raise BadRequest(
                f"'{raw}' is not a phone number.", f"phoneNumbers[{index}]", "InvalidPhoneNumber"
            ) from exc
        if not phonenumbers.is_possible_number(parsed):
            raise BadRequest(
                f"'{raw}' is not a phone number.", f"phoneNumbers[{index}]", "InvalidPhoneNumber"
            )
        item: dict[str, Any] = {
            "phoneNumber": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
            "nationalFormat": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
            "internationalFormat": phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL
            ),
        }
        if include_details:
            region = phonenumbers.region_code_for_number(parsed)
            if region:
                item["isoCountryCode"] = region
            kind = phonenumbers.number_type(parsed)
            item["numberType"] = _OPERATOR_TYPES.get(kind, "other")
            name = pn_carrier.name_for_number(parsed, "en")
            if name:
                item["operatorDetails"] = {"name": name}
        results.append(item)
    return results
