"""SMS API (``Sms/2021-03-07`` and ``Sms/2026-01-23``) and the operator's SMPP API under /admin."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import (
    AppDatabase,
    AuthenticatedTenant,
    SignedTenantCall,
    api_version,
    bind_tenant,
    require_operator,
)
from gateway.core.bodies import parse_model
from gateway.core.db import utcnow
from gateway.core.errors import NotFound, problem_response
from gateway.sms import service
from gateway.sms.admission import SendAdmission
from gateway.sms.schemas import (
    OPTOUT_API_VERSION,
    SMS_API_VERSIONS,
    VALIDATION_PROBLEM_VERSIONS,
    ConnectionCreate,
    OptOutRequest,
    RouteCreate,
)

router = APIRouter(tags=["sms"])
admin_router = APIRouter(prefix="/admin", tags=["admin: smpp"], dependencies=[Depends(require_operator)])


async def _body(request: Request, model: type[BaseModel]) -> Any:
    return parse_model(await request.body(), model)


@router.post(
    "/sms", dependencies=[api_version(*SMS_API_VERSIONS, validation_problems=VALIDATION_PROBLEM_VERSIONS)]
)
async def send_sms(request: Request, call: SignedTenantCall) -> JSONResponse:
    # Authenticated and stored with the other requests waiting, in one transaction.
    admission: SendAdmission = request.app.state.sms_admission
    admitted = await admission.admit(call, utcnow())
    bind_tenant(admitted.resource_id)
    return JSONResponse({"value": admitted.items}, status_code=202)


def _optout_route(action: str) -> Any:
    async def handler(request: Request, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
        body: OptOutRequest = await _body(request, OptOutRequest)

        def run() -> list[dict[str, Any]]:
            with database.session() as session:
                return service.optouts(session, tenant.resource_id, body, action)

        return {"value": await run_in_threadpool(run)}

    return handler


for _action in ("add", "remove", "check"):
    router.add_api_route(
        f"/sms/optouts:{_action}",
        _optout_route(_action),
        methods=["POST"],
        dependencies=[api_version(OPTOUT_API_VERSION, validation_problems=VALIDATION_PROBLEM_VERSIONS)],
        name=f"optouts_{_action}",
    )


@router.get("/deliveryReports/{outgoingMessageId}", dependencies=[api_version(OPTOUT_API_VERSION)])
def get_delivery_report(outgoingMessageId: str, tenant: AuthenticatedTenant, database: AppDatabase) -> Any:
    with database.read_session() as session:
        try:
            return service.delivery_report(session, tenant.resource_id, outgoingMessageId)
        except NotFound as exc:
            # Sms 2026-01-23 declares this 404 as its ErrorResponse, a problem document (type,
            # title, status, traceId), not the {"error": ...} of ACS's other errors.
            return problem_response(404, "Not Found", "about:blank", detail=exc.message)


# Operator ----------------------------------------------------------------------------------------------


@admin_router.post("/smpp/connections", status_code=201)
async def create_connection(request: Request, database: AppDatabase) -> dict[str, Any]:
    spec: ConnectionCreate = await _body(request, ConnectionCreate)
    with database.session() as session:
        return service.connection_json(service.add_connection(session, spec))


@admin_router.get("/smpp/connections")
def list_connections(database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return {"value": [service.connection_json(c) for c in service.list_connections(session)]}


@admin_router.delete("/smpp/connections/{name}", status_code=204)
def delete_connection(name: str, database: AppDatabase) -> None:
    with database.session() as session:
        service.delete_connection(session, name)


@admin_router.post("/smpp/routes", status_code=201)
async def create_route(request: Request, database: AppDatabase) -> dict[str, Any]:
    spec: RouteCreate = await _body(request, RouteCreate)
    with database.session() as session:
        route = service.add_route(session, spec)
        return {"prefix": route.prefix, "connection": spec.connection, "priority": route.priority}


@admin_router.get("/smpp/routes")
def list_routes(database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return {"value": service.list_routes(session)}


@admin_router.get("/sms/stats")
def sms_stats(database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return service.stats(session)
