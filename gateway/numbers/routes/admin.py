"""The operator's inventory API under /admin: carriers, imports and the inventory listing
(inventory.py, importer.py). The operator token is required by router.py's admin_router."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import AppDatabase
from gateway.core.db import utcnow
from gateway.core.errors import AcsError, BadRequest
from gateway.core.openapi import request_body
from gateway.numbers import importer, inventory
from gateway.numbers.routes.http import Skip
from gateway.numbers.schemas import CarrierCreate

router = APIRouter()


@router.post("/carriers", status_code=201)
def admin_create_carrier(body: CarrierCreate, database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return inventory.carrier_json(inventory.create_carrier(session, body.name, body.kind, body.notes))


@router.get("/carriers")
def admin_list_carriers(database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return {"value": [inventory.carrier_json(c, n) for c, n in inventory.list_carriers(session)]}


@router.delete("/carriers/{name}", status_code=204)
def admin_delete_carrier(name: str, database: AppDatabase) -> Response:
    with database.session() as session:
        inventory.delete_carrier(session, name)
    return Response(status_code=204)


@router.post(
    "/numbers:import",
    openapi_extra=request_body(
        {"type": "string", "description": "An inventory file: CSV, or JSON lines."},
        media_types=("text/csv", "application/x-ndjson"),
    ),
)
async def admin_import(
    request: Request,
    database: AppDatabase,
    carrier: str | None = None,
    fmt: Annotated[str | None, Query(alias="format")] = None,
) -> JSONResponse:
    """Import a CSV (text/csv) or JSON-lines (application/x-ndjson) body; 200, or 400 with the report."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    chosen = fmt or ("jsonl" if content_type in ("application/x-ndjson", "application/jsonl") else "csv")
    try:
        text = importer.decode_text(await request.body())
    except importer.FileFormatError as exc:
        raise BadRequest(str(exc), code="InvalidImportFile") from exc

    def run() -> importer.ImportReport:
        return importer.import_text(database, text, importer.detect_format("", chosen), carrier)

    try:
        report = await run_in_threadpool(run)
    except importer.FileFormatError as exc:
        raise AcsError(400, "InvalidImportFile", str(exc)) from exc
    if not report.accepted:
        body = {
            "error": {
                "code": "ImportRejected",
                "message": f"{report.error_count} bad rows; nothing imported.",
            }
        }
        return JSONResponse({**body, "report": report.as_json()}, status_code=400)
    return JSONResponse(report.as_json())


@router.get("/numbers")
def admin_list_numbers(
    database: AppDatabase,
    status: str | None = None,
    country: str | None = None,
    carrier: str | None = None,
    skip: Skip = 0,
    top: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> dict[str, Any]:
    now = utcnow()
    with database.session() as session:
        rows, total = inventory.list_numbers(
            session, now, status=status, country_code=country, carrier=carrier, skip=skip, top=top
        )
        return {"total": total, "value": [inventory.inventory_json(n, c, now) for n, c in rows]}
