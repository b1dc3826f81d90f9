"""Routes of purchased numbers: list, GET, capabilities PATCH and release DELETE (purchased.py,
releases.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import AppDatabase, AppSettings, AuthenticatedTenant
from gateway.core.openapi import request_body
from gateway.numbers import purchased, releases
from gateway.numbers.acs import absolute
from gateway.numbers.models import NumberOperation
from gateway.numbers.routes.http import Skip, accepted, base_url, parse, request_json
from gateway.numbers.schemas import OptionalCapabilities

router = APIRouter()


@router.get("/phoneNumbers")
def list_phone_numbers(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    skip: Skip = 0,
    top: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with database.read_session() as session:
        rows, more = purchased.list_owned(session, tenant.resource_id, skip, top)
        data: dict[str, Any] = {"phoneNumbers": [purchased.purchased_json(n) for n in rows]}
    if more:
        data["nextLink"] = absolute(base_url(request), "/phoneNumbers", skip=skip + top, top=top)
    return data


@router.get("/phoneNumbers/{phoneNumber}")
def get_phone_number(phoneNumber: str, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
    with database.read_session() as session:
        return purchased.purchased_json(purchased.get_owned(session, tenant.resource_id, phoneNumber))


@router.patch(
    "/phoneNumbers/{phoneNumber}/capabilities",
    status_code=202,
    openapi_extra=request_body(
        OptionalCapabilities, media_types=("application/merge-patch+json", "application/json")
    ),
)
async def update_capabilities(
    request: Request,
    phoneNumber: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    body: OptionalCapabilities = parse(OptionalCapabilities, await request_json(request))

    def run() -> tuple[NumberOperation, dict[str, Any]]:
        with database.session() as session:
            operation = purchased.start_update_capabilities(
                session, tenant.resource_id, phoneNumber, body.calling, body.sms
            )
            return operation, purchased.purchased_json(
                purchased.get_owned(session, tenant.resource_id, phoneNumber)
            )

    operation, current = await run_in_threadpool(run)
    return accepted(request, background, database, settings, operation, "capabilities-id", current)


@router.delete("/phoneNumbers/{phoneNumber}", status_code=202)
async def release_phone_number(
    request: Request,
    phoneNumber: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    def run() -> NumberOperation:
        with database.session() as session:
            return releases.start_release(session, tenant.resource_id, phoneNumber)

    operation = await run_in_threadpool(run)
    return accepted(request, background, database, settings, operation, "release-id")
