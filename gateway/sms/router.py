"""SMS API (``Sms/2021-03-07`` and ``Sms/2026-01-23``) and the operator's SMPP API under /admin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.core.auth import (
    AppDatabase,
    AuthenticatedTenant,
    api_version,
    bind_tenant,
    checked_api_version,
    checked_signature,
    require_operator,
)
from gateway.core.bodies import parse_model
from gateway.core.db import utcnow
from gateway.core.errors import AcsError, NotFound
from gateway.core.http_errors import error_answer, problem_response
from gateway.core.jsonio import FastJSONResponse
from gateway.core.openapi import request_body
from gateway.sms import bind_status, connections, history, reports
from gateway.sms.optouts import OptOutAction, optouts
from gateway.sms.schemas import (
    OPTOUT_API_VERSION,
    SMS_API_VERSIONS,
    VALIDATION_PROBLEM_VERSIONS,
    ConnectionCreate,
    OptOutRequest,
    RouteCreate,
    SendMessageRequest,
)

router = APIRouter(tags=["sms"])
admin_router = APIRouter(prefix="/admin", tags=["admin: smpp"], dependencies=[Depends(require_operator)])


async def _body(request: Request, model: type[BaseModel]) -> Any:
    return parse_model(await request.body(), model)


class SendEndpoint:
    """``POST /sms`` as a plain ASGI endpoint: a Starlette route, without FastAPI's request
    handling (its Request, dependency solving, exception wrapping and response rendering), the
    costliest part of this hot route (docs/performance.md). It does what the dependencies of the
    other tenant routes do, with the same functions: the api-version, the signature's form, then
    the admission (gateway/sms/admission.py) authenticates and stores the call with the others
    waiting, in one transaction."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # As FastAPI's routes do: the request log and the metrics label a request by its route.
        # (FastAPI's include_router copies a Starlette route, so the route cannot set it.)
        scope["route"] = SEND_ROUTE
        response = await self.respond(scope, receive)
        await response(scope, receive, send)

    @staticmethod
    async def respond(scope: Scope, receive: Receive) -> Response:
        request = Request(scope, receive)
        state = request.app.state
        validation_problems = False
        try:
            version = checked_api_version(request.query_params.get("api-version"), SMS_API_VERSIONS)
            validation_problems = version in VALIDATION_PROBLEM_VERSIONS
            body = await request.body()
            call = checked_signature("POST", scope, request.headers, body, state.settings)
            admitted = await state.sms_admission.admit(call, utcnow())
        except (AcsError, RequestValidationError) as exc:
            return error_answer(exc, validation_problems=validation_problems)
        bind_tenant(admitted.resource_id)
        return FastJSONResponse({"value": admitted.items}, status_code=202)


SEND_ROUTE = Route("/sms", SendEndpoint(), methods=["POST"], name="send_sms")
router.routes.append(SEND_ROUTE)


def _optout_route(action: OptOutAction) -> Any:
    async def handler(request: Request, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
        body: OptOutRequest = await _body(request, OptOutRequest)

        def run() -> list[dict[str, Any]]:
            with database.session() as session:
                return optouts(session, tenant.resource_id, body, action)

        return {"value": await run_in_threadpool(run)}

    return handler


for _action in OptOutAction:
    router.add_api_route(
        f"/sms/optouts:{_action}",
        _optout_route(_action),
        methods=["POST"],
        dependencies=[api_version(OPTOUT_API_VERSION, validation_problems=VALIDATION_PROBLEM_VERSIONS)],
        name=f"optouts_{_action}",
        openapi_extra=request_body(OptOutRequest),
    )


@router.get("/deliveryReports/{outgoingMessageId}", dependencies=[api_version(OPTOUT_API_VERSION)])
def get_delivery_report(outgoingMessageId: str, tenant: AuthenticatedTenant, database: AppDatabase) -> Any:
    with database.read_session() as session:
        try:
            return reports.delivery_report(session, tenant.resource_id, outgoingMessageId)
        except NotFound as exc:
            # Sms 2026-01-23 declares this 404 as its ErrorResponse, a problem document (type,
            # title, status, traceId), not the {"error": ...} of ACS's other errors.
            return problem_response(404, "Not Found", "about:blank", detail=exc.message)


# Operator ----------------------------------------------------------------------------------------------


@admin_router.post("/smpp/connections", status_code=201, openapi_extra=request_body(ConnectionCreate))
async def create_connection(request: Request, database: AppDatabase) -> dict[str, Any]:
    spec: ConnectionCreate = await _body(request, ConnectionCreate)
    with database.session() as session:
        return connections.connection_json(connections.add_connection(session, spec))


@admin_router.get("/smpp/connections")
def list_connections(database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return {"value": bind_status.connections_with_status(session, utcnow())}


@admin_router.delete("/smpp/connections/{name}", status_code=204)
def delete_connection(name: str, database: AppDatabase) -> None:
    with database.session() as session:
        connections.delete_connection(session, name)


@admin_router.post("/smpp/routes", status_code=201, openapi_extra=request_body(RouteCreate))
async def create_route(request: Request, database: AppDatabase) -> dict[str, Any]:
    spec: RouteCreate = await _body(request, RouteCreate)
    with database.session() as session:
        route = connections.add_route(session, spec)
        return {"prefix": route.prefix, "connection": spec.connection, "priority": route.priority}


@admin_router.get("/smpp/routes")
def list_routes(database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return {"value": connections.list_routes(session)}


@admin_router.get("/sms/messages")
def list_messages(
    database: AppDatabase,
    to: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    status: str | None = None,
    since: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Outgoing messages, newest first: by recipient, sender, status, ``since`` (30m, 2h, 1d or
    an ISO 8601 time)."""
    moment = history.parse_since(since, utcnow()) if since else None
    with database.session() as session:
        rows = history.list_messages(
            session, to_number=to, from_number=from_, status=status, since=moment, limit=limit
        )
    return {"value": rows}


@admin_router.get("/sms/messages/{message_id}")
def show_message(message_id: str, database: AppDatabase) -> dict[str, Any]:
    """One message's whole history: parts submitted, receipts, events and their deliveries."""
    with database.session() as session:
        return history.message_history(session, message_id)


@admin_router.get("/sms/stats")
def sms_stats(database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return reports.stats(session)


REF = "#/components/schemas/"


def document_send(schema: dict[str, Any]) -> dict[str, Any]:
    """Describe ``POST /sms`` in the app's OpenAPI schema (returned): FastAPI describes its own
    routes only."""
    body = SendMessageRequest.model_json_schema(by_alias=True, ref_template=REF + "{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(body.pop("$defs", {}))
    components["SendMessageRequest"] = body
    schema.setdefault("paths", {})["/sms"] = {
        "post": {
            "tags": ["sms"],
            "summary": "Send SMS (ACS Sms_Send)",
            "operationId": "send_sms",
            "parameters": [
                {
                    "name": "api-version",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "enum": list(SMS_API_VERSIONS)},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"{REF}SendMessageRequest"}}},
            },
            "responses": {
                "202": {"description": "Accepted: one result per recipient."},
                "400": {"description": "Bad request (a validation problem in 2026-01-23)."},
                "401": {"description": "The HMAC signature is missing, stale or verifies with no key."},
                "429": {"description": "Past the resource's send quota."},
            },
        }
    }
    return schema
