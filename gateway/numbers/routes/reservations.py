"""Routes of browse and reservations (2025-06-01): :browse, reservations' list, PATCH, GET,
DELETE and :purchase (browse.py, reservations.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import AppDatabase, AppSettings, AuthenticatedTenant
from gateway.core.db import utcnow
from gateway.core.errors import BadRequest
from gateway.core.openapi import request_body
from gateway.numbers import browse as browsing
from gateway.numbers import reservations
from gateway.numbers.acs import absolute, country
from gateway.numbers.models import NumberOperation
from gateway.numbers.routes.http import PageSize, Skip, accepted, base_url, parse, request_json
from gateway.numbers.rules import InvalidPhoneNumber, NumberFilter, normalise_prefix
from gateway.numbers.schemas import (
    RESERVATION_PATCH_SCHEMA,
    BrowseRequest,
    OptionalCapabilities,
    ReservationPurchaseRequest,
)

router = APIRouter()


@router.post(
    "/availablePhoneNumbers/countries/{countryCode}/:browse", openapi_extra=request_body(BrowseRequest)
)
async def browse(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
) -> dict[str, Any]:
    cc = country(countryCode)
    body: BrowseRequest = parse(BrowseRequest, await request_json(request))
    caps = body.capabilities or OptionalCapabilities()
    try:
        wanted = NumberFilter(
            country_code=cc,
            phone_number_type=body.phone_number_type,
            assignment_type=body.assignment_type,
            calling=caps.calling,
            sms=caps.sms,
            prefixes=tuple(normalise_prefix(p) for p in body.phone_number_prefixes or ()),
        )
    except InvalidPhoneNumber as exc:
        raise BadRequest(str(exc), "phoneNumberPrefixes", "InvalidPrefix") from exc

    def run() -> list[dict[str, Any]]:
        with database.session() as session:
            return browsing.browse(session, cc, wanted, settings, utcnow())

    return {"phoneNumbers": await run_in_threadpool(run)}


@router.get("/availablePhoneNumbers/reservations")
def list_reservations(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    skip: Skip = 0,
    max_page_size: PageSize = 100,
) -> dict[str, Any]:
    now = utcnow()
    with database.session() as session:
        rows, more = reservations.list_reservations(session, tenant.resource_id, skip, max_page_size)
        data: dict[str, Any] = {
            "reservations": [
                reservations.reservation_json(session, r, settings, now, with_numbers=False) for r in rows
            ]
        }
    if more:
        data["nextLink"] = absolute(
            base_url(request), request.url.path, maxPageSize=max_page_size, skip=skip + max_page_size
        )
    return data


@router.patch(
    "/availablePhoneNumbers/reservations/{reservationId}",
    openapi_extra=request_body(
        RESERVATION_PATCH_SCHEMA, media_types=("application/merge-patch+json", "application/json")
    ),
)
async def upsert_reservation(
    request: Request,
    reservationId: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
) -> JSONResponse:
    body = await request_json(request)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a reservation object.", "reservation")

    def run() -> reservations.ReservationUpdate:
        with database.session() as session:
            return reservations.upsert_reservation(
                session, tenant.resource_id, reservationId, body, settings, utcnow()
            )

    data, status_code = await run_in_threadpool(run)
    return JSONResponse(data, status_code=status_code)


@router.get("/availablePhoneNumbers/reservations/{reservationId}")
def get_reservation(
    reservationId: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
) -> dict[str, Any]:
    with database.session() as session:
        reservation = reservations.get_reservation(session, tenant.resource_id, reservationId)
        return reservations.reservation_json(session, reservation, settings, utcnow())


@router.delete("/availablePhoneNumbers/reservations/{reservationId}", status_code=204)
def delete_reservation(reservationId: str, tenant: AuthenticatedTenant, database: AppDatabase) -> Response:
    with database.session() as session:
        reservations.delete_reservation(session, tenant.resource_id, reservationId, utcnow())
    return Response(status_code=204)


@router.post(
    "/availablePhoneNumbers/reservations/{reservationId}/:purchase",
    status_code=202,
    openapi_extra=request_body(ReservationPurchaseRequest, required=False),
)
async def purchase_reservation(
    request: Request,
    reservationId: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    body: ReservationPurchaseRequest = parse(ReservationPurchaseRequest, await request_json(request))

    def run() -> NumberOperation:
        with database.session() as session:
            return reservations.start_reservation_purchase(
                session, tenant.resource_id, reservationId, body.agree_to_not_resell, settings, utcnow()
            )

    operation = await run_in_threadpool(run)
    return accepted(request, background, database, settings, operation, "reservation-purchase-id")
