"""Pure rules of the numbers domain (no I/O): E.164 normalisation, capability matching, import-row
validation and inventory filtering. Property-tested in tests/gateway/numbers/test_rules_properties.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType as PNT

PHONE_NUMBER_TYPES = ("geographic", "tollFree", "mobile")
ASSIGNMENT_TYPES = ("person", "application")
CAPABILITY_VALUES = ("none", "inbound", "outbound", "inbound+outbound")
CARRIER_KINDS = ("sip", "smpp", "both")
IMPORT_COLUMNS = (
    "phoneNumber",
    "countryCode",
    "phoneNumberType",
    "assignmentType",
    "areaCode",
    "locality",
    "administrativeDivision",
    "calling",
    "sms",
    "costAmount",
    "currencyCode",
    "carrier",
)
REQUIRED_COLUMNS = tuple(
    c for c in IMPORT_COLUMNS if c not in ("locality", "administrativeDivision", "carrier")
)

# What each import column takes, in the words of `numbers import --help` and docs/numbers.md.
COLUMN_VALUES: dict[str, str] = {
    "phoneNumber": "E.164 (+ and digits), valid for its countryCode",
    "countryCode": "ISO 3166 alpha-2 region, such as US or GB",
    "phoneNumberType": " | ".join(PHONE_NUMBER_TYPES) + " (plausible for the number)",
    "assignmentType": " | ".join(ASSIGNMENT_TYPES),
    "areaCode": "1-8 digits, a prefix of the national number",
    "locality": "free text, such as a city",
    "administrativeDivision": "free text, such as a state",
    "calling": " | ".join(CAPABILITY_VALUES),
    "sms": " | ".join(CAPABILITY_VALUES),
    "costAmount": "monthly cost, a non-negative decimal such as 1.00",
    "currencyCode": "ISO 4217 code, such as USD",
    "carrier": "a carrier's name (trunkline carriers add); --carrier fills it when empty",
}


def column_guide() -> str:
    """One line per import column: its name, whether it is required, the values it takes."""
    return "\n".join(
        f"{column}{'' if column in REQUIRED_COLUMNS else ' (optional)'}: {COLUMN_VALUES[column]}"
        for column in IMPORT_COLUMNS
    )


# Which libphonenumber number types are plausible for each ACS phoneNumberType.
_PLAUSIBLE_TYPES: dict[str, frozenset[int]] = {
    "geographic": frozenset({PNT.FIXED_LINE, PNT.FIXED_LINE_OR_MOBILE}),
    "mobile": frozenset({PNT.MOBILE, PNT.FIXED_LINE_OR_MOBILE}),
    "tollFree": frozenset({PNT.TOLL_FREE}),
}
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AREA_CODE = re.compile(r"^\d{1,8}$")


class InvalidPhoneNumber(ValueError):
    """Not a valid E.164 phone number."""


def normalise_e164(raw: str) -> str:
    """Return the E.164 form of ``raw`` (``+`` and digits; spaces, dashes, dots and brackets allowed
    in the input, as is a leading ``00`` or no ``+`` at all for a full international number).

    Raises InvalidPhoneNumber if the result is not a valid number for its country.
    """
    text = raw.strip()
    if not text or len(text) > 32:
        raise InvalidPhoneNumber("empty or too long")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        text = "+" + text
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(str(exc)) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid number")
    result = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not _E164.match(result):  # pragma: no cover - libphonenumber always formats E.164 this way
        raise InvalidPhoneNumber("not E.164")
    return result


def number_id(e164: str) -> str:
    """ACS's id of a number: its E.164 digits without the plus."""
    return e164.lstrip("+")


def parse_path_number(raw: str) -> str:
    """A phone number from a URL path (``+1425...``, ``%2B1425...`` already decoded, or digits)."""
    text = raw.strip()
    if not text.startswith("+"):
        text = "+" + text
    if not _E164.match(text):
        raise InvalidPhoneNumber("not E.164")
    return text


# Capabilities -------------------------------------------------------------------------------------


def _directions(value: str) -> frozenset[str]:
    if value == "none":
        return frozenset()
    return frozenset(value.split("+"))


def capability_satisfies(offered: str, wanted: str) -> bool:
    """Whether a number that supports ``offered`` can be given capability ``wanted``."""
    return _directions(wanted) <= _directions(offered)


def offered_values_for(wanted: str) -> tuple[str, ...]:
    """Every inventory capability value that satisfies ``wanted`` (for SQL ``IN`` filters)."""
    return tuple(v for v in CAPABILITY_VALUES if capability_satisfies(v, wanted))


# Import rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportRow:
    phone_number: str
    country_code: str
    phone_number_type: str
    assignment_type: str
    area_code: str
    locality: str
    administrative_division: str
    calling: str
    sms: str
    cost_amount: Decimal
    currency_code: str
    carrier: str


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def validate_import_row(  # noqa: PLR0912 - one check per column, in column order
    record: Mapping[str, Any], default_carrier: str | None = None
) -> ImportRow | list[str]:
    """Validate one CSV/JSONL record. Returns the normalised row, or the list of problems."""
    problems: list[str] = []
    values = {column: _text(record.get(column)) for column in IMPORT_COLUMNS}
    for column in REQUIRED_COLUMNS:
        if not values[column]:
            problems.append(f"{column} is required")
    carrier = values["carrier"] or (default_carrier or "")
    if not carrier:
        problems.append("carrier is required (a carrier column or --carrier)")
    country = values["countryCode"].upper()
    if values["countryCode"] and country not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(f"countryCode '{values['countryCode']}' is not an ISO 3166 region with numbers")
    number_type = values["phoneNumberType"]
    if number_type and number_type not in PHONE_NUMBER_TYPES:
        problems.append(f"phoneNumberType must be one of {', '.join(PHONE_NUMBER_TYPES)}")
    if values["assignmentType"] and values["assignmentType"] not in ASSIGNMENT_TYPES:
        problems.append(f"assignmentType must be one of {', '.join(ASSIGNMENT_TYPES)}")
    for column in ("calling", "sms"):
        if values[column] and values[column] not in CAPABILITY_VALUES:
            problems.append(f"{column} must be one of {', '.join(CAPABILITY_VALUES)}")
    area_code = values["areaCode"]
    if area_code and not _AREA_CODE.match(area_code):
        problems.append("areaCode must be 1-8 digits")
    currency = values["currencyCode"].upper()
    if values["currencyCode"] and not _CURRENCY.match(currency):
        problems.append("currencyCode must be an ISO 4217 code like USD")
    cost = Decimal(0)
    if values["costAmount"]:
        try:
            cost = Decimal(values["costAmount"])
            if not cost.is_finite() or cost < 0 or cost >= Decimal("1e8"):
                raise InvalidOperation
        except InvalidOperation:
            problems.append("costAmount must be a non-negative decimal number")
    raw_number = values["phoneNumber"]
    e164 = ""
    if raw_number:
        if not raw_number.startswith("+"):
            problems.append("phoneNumber must be in E.164 format (+ and digits)")
        else:
            try:
                parsed = phonenumbers.parse(raw_number, None)
            except phonenumbers.NumberParseException as exc:
                problems.append(f"phoneNumber cannot be parsed: {exc}")
                parsed = None
            if parsed is not None:
                e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
                if e164 != raw_number:
                    problems.append(f"phoneNumber is not in E.164 format (expected {e164})")
                problems.extend(_number_problems(parsed, country, number_type, area_code))
    if problems:
        return problems
    return ImportRow(
        phone_number=e164,
        country_code=country,
        phone_number_type=number_type,
        assignment_type=values["assignmentType"],
        area_code=area_code,
        locality=values["locality"],
        administrative_division=values["administrativeDivision"],
        calling=values["calling"],
        sms=values["sms"],
        cost_amount=cost,
        currency_code=currency,
        carrier=carrier,
    )


def _number_problems(
    parsed: phonenumbers.PhoneNumber, country: str, number_type: str, area_code: str
) -> list[str]:
    # is_valid_number_for_region checks validity and country at once, without libphonenumber's
    # search over every region sharing a calling code (25 for +1): the import's hot path.
    if country and phonenumbers.is_valid_number_for_region(parsed, country):
        region = country
    elif not phonenumbers.is_valid_number(parsed):
        return ["phoneNumber is not a valid number"]
    else:
        actual = phonenumbers.region_code_for_number(parsed) or "?"
        return [f"phoneNumber belongs to {actual}, not countryCode {country or '?'}"]
    problems = []
    plausible = _PLAUSIBLE_TYPES.get(number_type)
    if plausible is not None and _number_type(parsed, region) not in plausible:
        problems.append(f"phoneNumber is not plausibly {number_type}")
    national = phonenumbers.national_significant_number(parsed)
    if area_code and not national.startswith(area_code):
        problems.append(f"areaCode {area_code} is not a prefix of the national number {national}")
    return problems


def _number_type(parsed: phonenumbers.PhoneNumber, region: str) -> int:
    """libphonenumber's number type for a number already known to be valid in ``region``."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    helper = getattr(phonenumbers.phonenumberutil, "_number_type_helper", None)
    if metadata is None or helper is None:  # pragma: no cover - a future libphonenumber
        return int(phonenumbers.number_type(parsed))
    return int(helper(phonenumbers.national_significant_number(parsed), metadata))


# Filtering -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumberFilter:
    """What a search or browse asks for. ``None`` means "any"."""

    country_code: str
    phone_number_type: str
    assignment_type: str | None = None
    area_code: str | None = None
    calling: str | None = None
    sms: str | None = None
    prefixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InventoryView:
    """The fields of an inventory number that filtering looks at."""

    phone_number: str
    country_code: str
    phone_number_type: str
    assignment_type: str
    area_code: str
    calling: str
    sms: str
    free_at: datetime | None


def is_available(free_at: datetime | None, now: datetime) -> bool:
    return free_at is not None and free_at <= now


def matches(  # noqa: PLR0911 - one early return per filter field
    number: InventoryView, wanted: NumberFilter, now: datetime
) -> bool:
    """The reference semantics of the SQL filter in ``repository.filters.filter_clauses``."""
    if not is_available(number.free_at, now):
        return False
    if number.country_code != wanted.country_code or number.phone_number_type != wanted.phone_number_type:
        return False
    if wanted.assignment_type is not None and number.assignment_type != wanted.assignment_type:
        return False
    if wanted.area_code is not None and number.area_code != wanted.area_code:
        return False
    if wanted.calling is not None and not capability_satisfies(number.calling, wanted.calling):
        return False
    if wanted.sms is not None and not capability_satisfies(number.sms, wanted.sms):
        return False
    digits = number_id(number.phone_number)
    return not wanted.prefixes or any(digits.startswith(p) for p in wanted.prefixes)


def filter_numbers(numbers: Iterable[InventoryView], wanted: NumberFilter, now: datetime) -> list[str]:
    return sorted(n.phone_number for n in numbers if matches(n, wanted, now))


def normalise_prefix(raw: str) -> str:
    """A browse prefix: digits of the E.164 number, with or without the plus."""
    text = raw.strip().lstrip("+")
    if not text.isdigit() or len(text) > 15:
        raise InvalidPhoneNumber(f"prefix '{raw}' must be digits")
    return text
