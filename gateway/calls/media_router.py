"""CallAutomation 2026-03-12's ``CallMedia_*`` routes: play, recognize, continuous DTMF, send
DTMF, hold, unhold, cancel all media operations. Thin: gateway.calls.media checks the request
and builds what the SIP process holding the call carries out; the request is published after
the transaction (which may have made an operationCallbackUri's subscription) commits."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.calls import media
from gateway.calls.media_requests import Action
from gateway.calls.router import CALLING_API_VERSION
from gateway.calls.schemas import CALL_MEDIA_SCHEMAS
from gateway.core.auth import AppDatabase, AuthenticatedTenant, api_version
from gateway.core.bodies import json_body
from gateway.core.openapi import request_body
from gateway.events.runtime import limits_from_settings, policy_from_settings

media_router = APIRouter(
    prefix="/calling", tags=["call automation: media"], dependencies=[api_version(CALLING_API_VERSION)]
)

# ACS's status of each operation's success.
_STATUS = {
    Action.PLAY: 202,
    Action.RECOGNIZE: 202,
    Action.CANCEL_ALL: 202,
    Action.SEND_DTMF: 202,
    Action.START_CONTINUOUS_DTMF: 200,
    Action.STOP_CONTINUOUS_DTMF: 200,
    Action.HOLD: 200,
    Action.UNHOLD: 200,
}


async def _carry_out(
    request: Request, tenant: AuthenticatedTenant, database: AppDatabase, call_id: str, action: Action
) -> Response:
    raw = await request.body()
    body = json_body(raw) if raw.strip() else None
    settings = request.app.state.settings
    publisher = request.app.state.call_commands
    callbacks = media.Callbacks(policy_from_settings(settings), limits_from_settings(settings))

    def run() -> media.Planned:
        with database.session() as session:
            planned = media.plan(session, tenant.resource_id, call_id, action, body, callbacks)
        publisher.send_media(planned.process, planned.request)
        return planned

    planned = await run_in_threadpool(run)
    status = _STATUS[action]
    if action is Action.SEND_DTMF:
        answer: dict[str, Any] = {}
        if planned.request.operation_context is not None:
            answer["operationContext"] = planned.request.operation_context
        return JSONResponse(answer, status_code=status)
    return Response(status_code=status)


def _route(action: Action) -> None:
    async def endpoint(
        call_connection_id: str, request: Request, tenant: AuthenticatedTenant, database: AppDatabase
    ) -> Response:
        return await _carry_out(request, tenant, database, call_connection_id, action)

    endpoint.__name__ = f"call_media_{action.value}"
    media_router.add_api_route(
        f"/callConnections/{{call_connection_id}}:{action.value}",
        endpoint,
        methods=["POST"],
        status_code=_STATUS[action],
        name=f"CallMedia_{action.value}",
        openapi_extra=request_body(
            CALL_MEDIA_SCHEMAS[action.value], required=action is not Action.CANCEL_ALL
        ),
    )


for _action in Action:
    _route(_action)
