"""The catalogue of the tenant API: countries, localities, area codes and offerings that have
available numbers (expiry is lazy: a lapsed hold counts as available, see models.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import phonenumbers
from phonenumbers import geocoder
from sqlalchemy.orm import Session

from gateway.core.errors import BadRequest
from gateway.numbers.acs import cost_json
from gateway.numbers.repository import catalogue as repository


def country_name(code: str, language: str | None) -> str:
    """The country's name in the first language of an Accept-Language value (English otherwise)."""
    example = phonenumbers.example_number(code) or phonenumbers.example_number_for_type(
        code, phonenumbers.PhoneNumberType.TOLL_FREE
    )
    lang = (language or "en").split(",")[0].split(";")[0].strip().split("-")[0] or "en"
    if example is None:
        return code
    return (
        geocoder.country_name_for_number(example, lang)
        or geocoder.country_name_for_number(example, "en")
        or code
    )


def list_countries(session: Session, now: datetime, language: str | None) -> list[dict[str, Any]]:
    codes = repository.countries(session, now)
    return [{"countryCode": code, "localizedName": country_name(code, language)} for code in codes]


def list_localities(
    session: Session, country_code: str, now: datetime, phone_number_type: str | None, division: str | None
) -> list[dict[str, Any]]:
    result = []
    for locality in repository.localities(session, country_code, now, phone_number_type, division):
        item: dict[str, Any] = {"localizedName": locality.name}
        if locality.administrative_division:
            division_name = locality.administrative_division
            item["administrativeDivision"] = {
                "localizedName": division_name,
                "abbreviatedName": division_name,
            }
        result.append(item)
    return result


def list_area_codes(
    session: Session,
    country_code: str,
    now: datetime,
    phone_number_type: str,
    assignment_type: str | None,
    locality: str | None,
    division: str | None,
) -> list[dict[str, Any]]:
    if phone_number_type == "geographic" and not locality:
        raise BadRequest("locality is required for geographic area codes.", "locality", "MissingLocality")
    codes = repository.area_codes(
        session, country_code, now, phone_number_type, assignment_type, locality, division
    )
    return [{"areaCode": code} for code in codes]


def list_offerings(
    session: Session,
    country_code: str,
    now: datetime,
    phone_number_type: str | None,
    assignment_type: str | None,
) -> list[dict[str, Any]]:
    return [
        {
            "phoneNumberType": offering.phone_number_type,
            "assignmentType": offering.assignment_type,
            "availableCapabilities": {"calling": offering.calling, "sms": offering.sms},
            "cost": cost_json(offering.min_cost, offering.currency_code),
        }
        for offering in repository.offerings(session, country_code, now, phone_number_type, assignment_type)
    ]
