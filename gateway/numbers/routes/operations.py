"""Routes of long-running operations: GET (finishing an abandoned one inline) and DELETE
(operations.py, operation_status.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateway.core.auth import AppDatabase, AppSettings, AuthenticatedTenant
from gateway.core.db import utcnow
from gateway.numbers import operation_status, operations
from gateway.numbers.routes.http import base_url

router = APIRouter()


@router.get("/phoneNumbers/operations/{operationId}")
def get_operation(
    request: Request,
    operationId: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
) -> JSONResponse:
    with database.session() as session:
        operation = operations.get_operation(session, tenant.resource_id, operationId)
        unfinished = operation.status in ("notStarted", "running")
    if unfinished:
        operations.refresh(database, settings, operation.id)
        with database.session() as session:
            operation = operations.get_operation(session, tenant.resource_id, operationId)
    data = operation_status.operation_json(operation, base_url(request))
    headers = {"Location": data["resourceLocation"]} if "resourceLocation" in data else None
    return JSONResponse(data, headers=headers)


@router.delete("/phoneNumbers/operations/{operationId}", status_code=204)
def cancel_operation(operationId: str, tenant: AuthenticatedTenant, database: AppDatabase) -> Response:
    with database.session() as session:
        operation_status.cancel_operation(session, tenant.resource_id, operationId, utcnow())
    return Response(status_code=204)
