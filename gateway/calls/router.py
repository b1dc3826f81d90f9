"""SipRouting 2023-03-01 (``GET``/``PATCH /sip``, HMAC-authenticated per resource), the
operator's SIP trunks and routes under ``/admin/sip``, and CallAutomation 2026-03-12's call
connections under ``/calling``. Thin: the rules are in service.py,
sip_routing.py and the pure modules they use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gateway.calls import connections, outbound, party_callbacks, service, sip_routing
from gateway.calls.schemas import (
    ANSWER_CALL_SCHEMA,
    CREATE_CALL_SCHEMA,
    REDIRECT_CALL_SCHEMA,
    REJECT_CALL_SCHEMA,
    SIP_CONFIGURATION_PATCH_SCHEMA,
    RouteSpec,
    TrunkSpec,
    describe,
)
from gateway.calls.sip_configuration import API_VERSION
from gateway.core.auth import AppDatabase, AuthenticatedTenant, api_version, require_operator
from gateway.core.bodies import json_body
from gateway.core.db import utcnow
from gateway.core.errors import AcsError, BadRequest
from gateway.core.openapi import request_body
from gateway.events.runtime import limits_from_settings, policy_from_settings
from sip.worker.messages import MakeCall

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


# CallAutomation 2026-03-12: call connections ---------------------------------------------------------

CALLING_API_VERSION = "2026-03-12"
calling_router = APIRouter(
    prefix="/calling", tags=["call automation"], dependencies=[api_version(CALLING_API_VERSION)]
)


def _calling(request: Request) -> tuple[Any, connections.Keys]:
    """The app's command publisher and the keys that check incomingCallContexts."""
    state = request.app.state
    keys = connections.Keys(list(state.identity.keyring.keys()), state.settings.token_issuer)
    return state.call_commands, keys


def _decide(database: Any, publisher: Any, decide: Callable[[Session], connections.Done]) -> dict[str, Any]:
    """Commit what the rules decide about a call, then send its worker command to the SIP process
    holding the call (a new call's first INVITE, which no process holds yet, to the queue they
    all take new calls from). Answers the call's properties as they were committed."""
    with database.session() as session:
        done = decide(session)
        result = connections.properties(done.call)
    command = done.applied.command
    if command is not None and (done.applied.process or isinstance(command, MakeCall)):
        publisher.send(done.applied.process, command)
    for other in done.applied.also:  # the call's other legs (it has several parties)
        publisher.send(done.applied.process, other)
    return result


@calling_router.post("/callConnections", status_code=201, openapi_extra=request_body(CREATE_CALL_SCHEMA))
async def create_call(request: Request, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
    body = json_body(await request.body())
    publisher, _ = _calling(request)
    settings = request.app.state.settings

    def decide(session: Session) -> connections.Done:
        policy, limits = policy_from_settings(settings), limits_from_settings(settings)
        return outbound.create_call(session, tenant.resource_id, body, policy, limits, utcnow())

    return await run_in_threadpool(_decide, database, publisher, decide)


@calling_router.post("/callConnections:answer", openapi_extra=request_body(ANSWER_CALL_SCHEMA))
async def answer_call(request: Request, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
    body = json_body(await request.body())
    publisher, keys = _calling(request)
    settings = request.app.state.settings

    def decide(session: Session) -> connections.Done:
        policy, limits = policy_from_settings(settings), limits_from_settings(settings)
        return connections.answer(session, keys, tenant.resource_id, body, policy, limits, utcnow())

    return await run_in_threadpool(_decide, database, publisher, decide)


@calling_router.post(
    "/callConnections:reject", status_code=204, openapi_extra=request_body(REJECT_CALL_SCHEMA)
)
async def reject_call(request: Request, tenant: AuthenticatedTenant, database: AppDatabase) -> Response:
    return await _refuse(request, tenant, database, connections.reject)


@calling_router.post(
    "/callConnections:redirect", status_code=204, openapi_extra=request_body(REDIRECT_CALL_SCHEMA)
)
async def redirect_call(request: Request, tenant: AuthenticatedTenant, database: AppDatabase) -> Response:
    return await _refuse(request, tenant, database, connections.redirect)


async def _refuse(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    rule: Callable[..., connections.Done],
) -> Response:
    """:reject and :redirect: the rule decides on the ringing call, the SIP process answers it."""
    body = json_body(await request.body())
    publisher, keys = _calling(request)

    def decide(session: Session) -> connections.Done:
        return rule(session, keys, tenant.resource_id, body, utcnow())

    await run_in_threadpool(_decide, database, publisher, decide)
    return Response(status_code=204)


@calling_router.get("/callConnections/{call_connection_id}")
def get_call(call_connection_id: str, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
    with database.read_session() as session:
        return connections.properties(connections.get_call(session, tenant.resource_id, call_connection_id))


def _hang_up(request: Request, tenant_id: str, database: Any, call_id: str) -> Response:
    publisher, _ = _calling(request)
    _decide(database, publisher, lambda session: connections.hang_up(session, tenant_id, call_id, utcnow()))
    return Response(status_code=204)


@calling_router.delete("/callConnections/{call_connection_id}", status_code=204)
def hang_up_call(
    call_connection_id: str, request: Request, tenant: AuthenticatedTenant, database: AppDatabase
) -> Response:
    return _hang_up(request, tenant.resource_id, database, call_connection_id)


@calling_router.post("/callConnections/{call_connection_id}:terminate", status_code=204)
def terminate_call(
    call_connection_id: str, request: Request, tenant: AuthenticatedTenant, database: AppDatabase
) -> Response:
    return _hang_up(request, tenant.resource_id, database, call_connection_id)


@calling_router.get("/callConnections/{call_connection_id}/participants")
def list_participants(
    call_connection_id: str, tenant: AuthenticatedTenant, database: AppDatabase
) -> dict[str, Any]:
    with database.read_session() as session:
        call = connections.get_call(session, tenant.resource_id, call_connection_id)
        return {"value": party_callbacks.participants(session, call)}


@calling_router.get("/callConnections/{call_connection_id}/participants/{participant_raw_id}")
def get_participant(
    call_connection_id: str, participant_raw_id: str, tenant: AuthenticatedTenant, database: AppDatabase
) -> dict[str, Any]:
    with database.read_session() as session:
        call = connections.get_call(session, tenant.resource_id, call_connection_id)
        return connections.participant(
            party_callbacks.participants(session, call), call.id, participant_raw_id
        )
