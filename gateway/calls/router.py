"""SipRouting 2023-03-01 (``GET``/``PATCH /sip``, HMAC-authenticated per resource) and the
operator's SIP trunks and routes under ``/admin/sip``. Thin: the rules are in service.py,
sip_routing.py and the pure modules they use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from gateway.calls import service, sip_routing
from gateway.calls.schemas import SIP_CONFIGURATION_PATCH_SCHEMA, RouteSpec, TrunkSpec, describe
from gateway.calls.sip_configuration import API_VERSION
from gateway.core.auth import AppDatabase, AuthenticatedTenant, api_version, require_operator
from gateway.core.bodies import json_body
from gateway.core.errors import AcsError, BadRequest
from gateway.core.openapi import request_body

router = APIRouter(tags=["sip routing"], dependencies=[api_version(API_VERSION)])
admin_router = APIRouter(prefix="/admin/sip", tags=["admin: sip"], dependencies=[Depends(require_operator)])

# What SipRouting_Update consumes (the SDK sends the first); plain JSON is taken too.
PATCH_MEDIA_TYPES = ("application/merge-patch+json", "application/json")


@router.get("/sip")
def get_sip_configuration(tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
    with database.read_session() as session:
        return sip_routing.get_configuration(session, tenant.resource_id)


@router.patch(
    "/sip", openapi_extra=request_body(SIP_CONFIGURATION_PATCH_SCHEMA, media_types=PATCH_MEDIA_TYPES)
)
async def update_sip_configuration(
    request: Request, tenant: AuthenticatedTenant, database: AppDatabase
) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type not in PATCH_MEDIA_TYPES:
        raise AcsError(
            415,
            "UnsupportedMediaType",
            f"The body must be {PATCH_MEDIA_TYPES[0]} (or {PATCH_MEDIA_TYPES[1]}), not {media_type}.",
        )
    body = json_body(await request.body())

    def run() -> dict[str, Any]:
        with database.session() as session:
            return sip_routing.patch_configuration(session, tenant.resource_id, body)

    return await run_in_threadpool(run)


# Operator ---------------------------------------------------------------------------------------------


async def _spec(request: Request, model: type[BaseModel]) -> Any:
    data = json_body(await request.body())
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise BadRequest(describe(exc), code="InvalidRequest") from exc


@admin_router.post("/trunks", status_code=201, openapi_extra=request_body(TrunkSpec))
async def create_trunk(request: Request, database: AppDatabase) -> dict[str, Any]:
    spec: TrunkSpec = await _spec(request, TrunkSpec)

    def run() -> dict[str, Any]:
        with database.session() as session:
            return service.trunk_json(service.add_trunk(session, spec), spec.carrier)

    return await run_in_threadpool(run)


@admin_router.get("/trunks")
def list_trunks(database: AppDatabase) -> dict[str, Any]:
    with database.read_session() as session:
        return {"value": service.list_trunks(session)}


@admin_router.delete("/trunks/{name}", status_code=204)
def delete_trunk(name: str, database: AppDatabase) -> Response:
    with database.session() as session:
        service.remove_trunk(session, name)
    return Response(status_code=204)


@admin_router.post("/routes", status_code=201, openapi_extra=request_body(RouteSpec))
async def create_route(request: Request, database: AppDatabase) -> dict[str, Any]:
    spec: RouteSpec = await _spec(request, RouteSpec)

    def run() -> dict[str, Any]:
        with database.session() as session:
            return service.add_route(session, spec)

    return await run_in_threadpool(run)


@admin_router.get("/routes")
def list_routes(database: AppDatabase) -> dict[str, Any]:
    with database.read_session() as session:
        return {"value": service.list_routes(session)}


@admin_router.delete("/routes/{prefix}", status_code=204)
def delete_route(prefix: str, database: AppDatabase, trunk: str | None = None) -> Response:
    """Remove the prefix's route, or with ``?trunk=NAME`` only that trunk from it."""
    with database.session() as session:
        service.remove_route(session, prefix, trunk)
    return Response(status_code=204)
