"""Routes of search and purchase: :search, its results, :purchase (searches.py, purchases.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import AppDatabase, AppSettings, AuthenticatedTenant
from gateway.core.db import utcnow
from gateway.core.openapi import request_body
from gateway.numbers import purchases, searches
from gateway.numbers.acs import country
from gateway.numbers.models import NumberOperation
from gateway.numbers.routes.http import accepted, parse, request_json
from gateway.numbers.schemas import PurchaseRequest, SearchRequest

router = APIRouter()


@router.post(
    "/availablePhoneNumbers/countries/{countryCode}/:search",
    status_code=202,
    openapi_extra=request_body(SearchRequest),
)
async def search(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    cc = country(countryCode)
    body: SearchRequest = parse(SearchRequest, await request_json(request))

    def run() -> tuple[NumberOperation, dict[str, Any]]:
        with database.session() as session:
            found, operation = searches.start_search(
                session,
                tenant.resource_id,
                cc,
                searches.SearchRequest(
                    phone_number_type=body.phone_number_type,
                    assignment_type=body.assignment_type,
                    calling=body.capabilities.calling,
                    sms=body.capabilities.sms,
                    area_code=body.area_code,
                    quantity=body.quantity,
                ),
                settings,
            )
            return operation, searches.search_json(found)

    operation, result = await run_in_threadpool(run)
    return accepted(request, background, database, settings, operation, "search-id", result)


@router.get("/availablePhoneNumbers/searchResults/{searchId}")
def get_search_result(searchId: str, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return searches.search_json(searches.get_search(session, tenant.resource_id, searchId))


@router.post("/availablePhoneNumbers/:purchase", status_code=202, openapi_extra=request_body(PurchaseRequest))
async def purchase(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    body: PurchaseRequest = parse(PurchaseRequest, await request_json(request))

    def run() -> NumberOperation:
        with database.session() as session:
            return purchases.start_purchase(
                session, tenant.resource_id, body.search_id, body.agree_to_not_resell, utcnow()
            )

    operation = await run_in_threadpool(run)
    return accepted(request, background, database, settings, operation, "purchase-id")
