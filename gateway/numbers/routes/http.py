"""HTTP plumbing shared by the numbers routes: query parameter types, JSON bodies, next links of
in-memory pages, and the 202 Accepted answer that starts a long-running operation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import BackgroundTasks, Header, Query, Request
from fastapi.responses import JSONResponse

from gateway.core.bodies import json_body, validated
from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.numbers import operations
from gateway.numbers.acs import absolute
from gateway.numbers.models import NumberOperation

Skip = Annotated[int, Query(ge=0, le=2**31 - 1)]
PageSize = Annotated[int, Query(alias="maxPageSize", ge=1, le=1000)]
AcceptLanguage = Annotated[str | None, Header(alias="accept-language")]


def base_url(request: Request) -> str:
    return str(request.base_url)


def page(request: Request, items: list[dict[str, Any]], name: str, skip: int, size: int) -> dict[str, Any]:
    """Items ``skip`` .. ``skip + size`` under ``name``, with a nextLink if more follow."""
    shown = items[skip : skip + size]
    data: dict[str, Any] = {name: shown}
    if skip + size < len(items):
        params = {k: v for k, v in request.query_params.items() if k not in ("skip", "api-version")}
        data["nextLink"] = absolute(base_url(request), request.url.path, **params, skip=skip + size)
    return data


async def request_json(request: Request) -> Any:
    return json_body(await request.body())


def parse(model: Any, body: Any) -> Any:
    """``body`` validated as ``model`` (an absent body counts as ``{}``)."""
    return validated(model, body if body is not None else {})


def accepted(
    request: Request,
    background: BackgroundTasks,
    database: Database,
    settings: Settings,
    operation: NumberOperation,
    id_header: str,
    body: dict[str, Any] | None = None,
) -> JSONResponse:
    """202 with the operation's links and id headers; the operation runs after the response."""
    base = base_url(request)
    uid = operation.id.rsplit("_", 1)[1]  # <kind>_<uuid>; a UUID has no underscore
    headers = {
        "Operation-Location": absolute(base, f"/phoneNumbers/operations/{operation.id}"),
        "operation-id": operation.id,
        id_header: uid,
    }
    if operation.resource_location:
        headers["Location"] = absolute(base, operation.resource_location)
    background.add_task(operations.execute, database, settings, operation.id)
    return JSONResponse(body if body is not None else {}, status_code=202, headers=headers)
