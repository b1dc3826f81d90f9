"""CallAutomation 2026-03-12's participant operations on a call connection: transfer, add,
remove, cancel an invitation, mute. Thin: the rules are in participants.py; each commits, then
sends its worker commands to the SIP process holding the call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.calls import participants
from gateway.calls.router import CALLING_API_VERSION
from gateway.core.auth import AppDatabase, AuthenticatedTenant, api_version
from gateway.core.bodies import json_body
from gateway.core.db import utcnow
from gateway.events.runtime import limits_from_settings, policy_from_settings

participants_router = APIRouter(
    prefix="/calling/callConnections",
    tags=["call automation"],
    dependencies=[api_version(CALLING_API_VERSION)],
)

Operation = Callable[..., participants.PartyDone]


async def _run(
    request: Request, tenant: AuthenticatedTenant, database: AppDatabase, call_id: str, operation: Operation
) -> dict[str, Any]:
    body = json_body(await request.body())
    state = request.app.state
    policy, limits = policy_from_settings(state.settings), limits_from_settings(state.settings)

    def decide() -> dict[str, Any]:
        with database.session() as session:
            done = operation(session, tenant.resource_id, call_id, body, policy, limits, utcnow())
        for command in done.commands:
            state.call_commands.send(done.process, command)
        return done.body

    return await run_in_threadpool(decide)


@participants_router.post("/{call_connection_id}:transferToParticipant", status_code=202)
async def transfer_to_participant(
    call_connection_id: str, request: Request, tenant: AuthenticatedTenant, database: AppDatabase
) -> JSONResponse:
    body = await _run(request, tenant, database, call_connection_id, participants.transfer)
    return JSONResponse(body, status_code=202)


@participants_router.post("/{call_connection_id}/participants:add", status_code=202)
async def add_participant(
    call_connection_id: str, request: Request, tenant: AuthenticatedTenant, database: AppDatabase
) -> JSONResponse:
    body = await _run(request, tenant, database, call_connection_id, participants.add_participant)
    return JSONResponse(body, status_code=202)


@participants_router.post("/{call_connection_id}/participants:remove", status_code=202)
async def remove_participant(
    call_connection_id: str, request: Request, tenant: AuthenticatedTenant, database: AppDatabase
) -> JSONResponse:
    body = await _run(request, tenant, database, call_connection_id, participants.remove_participant)
    return JSONResponse(body, status_code=202)


@participants_router.post("/{call_connection_id}/participants:cancelAddParticipant", status_code=202)
async def cancel_add_participant(
    call_connection_id: str, request: Request, tenant: AuthenticatedTenant, database: AppDatabase
) -> JSONResponse:
    body = await _run(request, tenant, database, call_connection_id, participants.cancel_add_participant)
    return JSONResponse(body, status_code=202)


@participants_router.post("/{call_connection_id}/participants:mute")
async def mute_participant(
    call_connection_id: str, request: Request, tenant: AuthenticatedTenant, database: AppDatabase
) -> dict[str, Any]:
    return await _run(request, tenant, database, call_connection_id, participants.mute_participant)
