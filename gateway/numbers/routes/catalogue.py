"""Routes of the catalogue: countries, localities, area codes and offerings (catalogue.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from gateway.core.auth import AppDatabase, AuthenticatedTenant
from gateway.core.db import utcnow
from gateway.numbers import catalogue
from gateway.numbers.acs import country
from gateway.numbers.routes.http import AcceptLanguage, PageSize, Skip, page
from gateway.numbers.schemas import AssignmentType, PhoneNumberType

router = APIRouter()


@router.get("/availablePhoneNumbers/countries")
def list_countries(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    accept_language: AcceptLanguage = None,
    skip: Skip = 0,
    max_page_size: PageSize = 100,
) -> dict[str, Any]:
    with database.read_session() as session:
        items = catalogue.list_countries(session, utcnow(), accept_language)
    return page(request, items, "countries", skip, max_page_size)


@router.get("/availablePhoneNumbers/countries/{countryCode}/localities")
def list_localities(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    skip: Skip = 0,
    max_page_size: PageSize = 100,
    administrative_division: Annotated[str | None, Query(alias="administrativeDivision")] = None,
    phone_number_type: Annotated[PhoneNumberType | None, Query(alias="phoneNumberType")] = None,
) -> dict[str, Any]:
    cc = country(countryCode)
    with database.read_session() as session:
        items = catalogue.list_localities(session, cc, utcnow(), phone_number_type, administrative_division)
    return page(request, items, "phoneNumberLocalities", skip, max_page_size)


@router.get("/availablePhoneNumbers/countries/{countryCode}/areaCodes")
def list_area_codes(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    phone_number_type: Annotated[PhoneNumberType, Query(alias="phoneNumberType")],
    skip: Skip = 0,
    max_page_size: PageSize = 100,
    assignment_type: Annotated[AssignmentType | None, Query(alias="assignmentType")] = None,
    locality: str | None = None,
    administrative_division: Annotated[str | None, Query(alias="administrativeDivision")] = None,
) -> dict[str, Any]:
    cc = country(countryCode)
    with database.read_session() as session:
        items = catalogue.list_area_codes(
            session, cc, utcnow(), phone_number_type, assignment_type, locality, administrative_division
        )
    return page(request, items, "areaCodes", skip, max_page_size)


@router.get("/availablePhoneNumbers/countries/{countryCode}/offerings")
def list_offerings(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    skip: Skip = 0,
    max_page_size: PageSize = 100,
    phone_number_type: Annotated[PhoneNumberType | None, Query(alias="phoneNumberType")] = None,
    assignment_type: Annotated[AssignmentType | None, Query(alias="assignmentType")] = None,
) -> dict[str, Any]:
    cc = country(countryCode)
    with database.read_session() as session:
        items = catalogue.list_offerings(session, cc, utcnow(), phone_number_type, assignment_type)
    return page(request, items, "phoneNumberOfferings", skip, max_page_size)
