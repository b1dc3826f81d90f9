"""Phone Numbers API 2025-06-01 (``PhoneNumbers/2025-06-01/phonenumbers.json``) and the operator's
inventory API under /admin. Routers are thin: rules live in service.py and inventory.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from gateway.core.auth import AppDatabase, AppSettings, AuthenticatedTenant, api_version, require_operator
from gateway.core.bodies import json_body, validated
from gateway.core.db import Database, utcnow
from gateway.core.errors import AcsError, BadRequest
from gateway.core.settings import Settings
from gateway.numbers import importer, inventory, operations, service
from gateway.numbers.models import NumberOperation
from gateway.numbers.rules import NumberFilter
from gateway.numbers.schemas import (
    AssignmentType,
    BrowseRequest,
    CarrierCreate,
    OperatorInformationRequest,
    OptionalCapabilities,
    PhoneNumberType,
    PurchaseRequest,
    ReservationPurchaseRequest,
    SearchRequest,
)

router = APIRouter(tags=["phone numbers"], dependencies=[api_version(service.API_VERSION)])
admin_router = APIRouter(prefix="/admin", tags=["admin: numbers"], dependencies=[Depends(require_operator)])

Skip = Annotated[int, Query(ge=0, le=2**31 - 1)]
PageSize = Annotated[int, Query(alias="maxPageSize", ge=1, le=1000)]
AcceptLanguage = Annotated[str | None, Header(alias="accept-language")]


def _base(request: Request) -> str:
    return str(request.base_url)


def _page(request: Request, items: list[dict[str, Any]], name: str, skip: int, size: int) -> dict[str, Any]:
    page = items[skip : skip + size]
    data: dict[str, Any] = {name: page}
    if skip + size < len(items):
        params = {k: v for k, v in request.query_params.items() if k not in ("skip", "api-version")}
        data["nextLink"] = service.absolute(_base(request), request.url.path, **params, skip=skip + size)
    return data


async def _json_body(request: Request) -> Any:
    return json_body(await request.body())


def _parse(model: Any, body: Any) -> Any:
    return validated(model, body if body is not None else {})


def _accepted(
    request: Request,
    background: BackgroundTasks,
    database: Database,
    settings: Settings,
    operation: NumberOperation,
    id_header: str,
    body: dict[str, Any] | None = None,
) -> JSONResponse:
    base = _base(request)
    uid = operation.id.rsplit("_", 1)[1]  # <kind>_<uuid>; a UUID has no underscore
    headers = {
        "Operation-Location": service.absolute(base, f"/phoneNumbers/operations/{operation.id}"),
        "operation-id": operation.id,
        id_header: uid,
    }
    if operation.resource_location:
        headers["Location"] = service.absolute(base, operation.resource_location)
    background.add_task(operations.execute, database, settings, operation.id)
    return JSONResponse(body if body is not None else {}, status_code=202, headers=headers)


# Catalogue ---------------------------------------------------------------------------------------------


@router.get("/availablePhoneNumbers/countries")
def list_countries(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    accept_language: AcceptLanguage = None,
    skip: Skip = 0,
    max_page_size: PageSize = 100,
) -> dict[str, Any]:
    with database.read_session() as session:
        items = service.list_countries(session, utcnow(), accept_language)
    return _page(request, items, "countries", skip, max_page_size)


@router.get("/availablePhoneNumbers/countries/{countryCode}/localities")
def list_localities(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    skip: Skip = 0,
    max_page_size: PageSize = 100,
    administrative_division: Annotated[str | None, Query(alias="administrativeDivision")] = None,
    phone_number_type: Annotated[PhoneNumberType | None, Query(alias="phoneNumberType")] = None,
) -> dict[str, Any]:
    cc = service.country(countryCode)
    with database.read_session() as session:
        items = service.list_localities(session, cc, utcnow(), phone_number_type, administrative_division)
    return _page(request, items, "phoneNumberLocalities", skip, max_page_size)


@router.get("/availablePhoneNumbers/countries/{countryCode}/areaCodes")
def list_area_codes(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    phone_number_type: Annotated[PhoneNumberType, Query(alias="phoneNumberType")],
    skip: Skip = 0,
    max_page_size: PageSize = 100,
    assignment_type: Annotated[AssignmentType | None, Query(alias="assignmentType")] = None,
    locality: str | None = None,
    administrative_division: Annotated[str | None, Query(alias="administrativeDivision")] = None,
) -> dict[str, Any]:
    cc = service.country(countryCode)
    with database.read_session() as session:
        items = service.list_area_codes(
            session, cc, utcnow(), phone_number_type, assignment_type, locality, administrative_division
        )
    return _page(request, items, "areaCodes", skip, max_page_size)


@router.get("/availablePhoneNumbers/countries/{countryCode}/offerings")
def list_offerings(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    skip: Skip = 0,
    max_page_size: PageSize = 100,
    phone_number_type: Annotated[PhoneNumberType | None, Query(alias="phoneNumberType")] = None,
    assignment_type: Annotated[AssignmentType | None, Query(alias="assignmentType")] = None,
) -> dict[str, Any]:
    cc = service.country(countryCode)
    with database.read_session() as session:
        items = service.list_offerings(session, cc, utcnow(), phone_number_type, assignment_type)
    return _page(request, items, "phoneNumberOfferings", skip, max_page_size)


# Search and purchase --------------------------------------------------------------------------------------


@router.post("/availablePhoneNumbers/countries/{countryCode}/:search", status_code=202)
async def search(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    cc = service.country(countryCode)
    body: SearchRequest = _parse(SearchRequest, await _json_body(request))

    def run() -> tuple[NumberOperation, dict[str, Any]]:
        with database.session() as session:
            found, operation = service.start_search(
                session,
                tenant.resource_id,
                cc,
                service.SearchRequest(
                    phone_number_type=body.phone_number_type,
                    assignment_type=body.assignment_type,
                    calling=body.capabilities.calling,
                    sms=body.capabilities.sms,
                    area_code=body.area_code,
                    quantity=body.quantity,
                ),
                settings,
            )
            return operation, service.search_json(found)

    operation, result = await run_in_threadpool(run)
    return _accepted(request, background, database, settings, operation, "search-id", result)


@router.get("/availablePhoneNumbers/searchResults/{searchId}")
def get_search_result(searchId: str, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return service.search_json(service.get_search(session, tenant.resource_id, searchId))


@router.post("/availablePhoneNumbers/:purchase", status_code=202)
async def purchase(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    body: PurchaseRequest = _parse(PurchaseRequest, await _json_body(request))

    def run() -> NumberOperation:
        with database.session() as session:
            return service.start_purchase(
                session, tenant.resource_id, body.search_id, body.agree_to_not_resell, utcnow()
            )

    operation = await run_in_threadpool(run)
    return _accepted(request, background, database, settings, operation, "purchase-id")


# Browse and reservations --------------------------------------------------------------------------------


@router.post("/availablePhoneNumbers/countries/{countryCode}/:browse")
async def browse(
    request: Request,
    countryCode: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
) -> dict[str, Any]:
    cc = service.country(countryCode)
    body: BrowseRequest = _parse(BrowseRequest, await _json_body(request))
    caps = body.capabilities or OptionalCapabilities()
    try:
        wanted = NumberFilter(
            country_code=cc,
            phone_number_type=body.phone_number_type,
            assignment_type=body.assignment_type,
            calling=caps.calling,
            sms=caps.sms,
            prefixes=tuple(service.normalise_prefix(p) for p in body.phone_number_prefixes or ()),
        )
    except service.InvalidPhoneNumber as exc:
        raise BadRequest(str(exc), "phoneNumberPrefixes", "InvalidPrefix") from exc

    def run() -> list[dict[str, Any]]:
        with database.session() as session:
            return service.browse(session, cc, wanted, settings, utcnow())

    return {"phoneNumbers": await run_in_threadpool(run)}


@router.get("/availablePhoneNumbers/reservations")
def list_reservations(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    skip: Skip = 0,
    max_page_size: PageSize = 100,
) -> dict[str, Any]:
    now = utcnow()
    with database.session() as session:
        rows, more = service.list_reservations(session, tenant.resource_id, skip, max_page_size)
        data: dict[str, Any] = {
            "reservations": [
                service.reservation_json(session, r, settings, now, with_numbers=False) for r in rows
            ]
        }
    if more:
        data["nextLink"] = service.absolute(
            _base(request), request.url.path, maxPageSize=max_page_size, skip=skip + max_page_size
        )
    return data


@router.patch("/availablePhoneNumbers/reservations/{reservationId}")
async def upsert_reservation(
    request: Request,
    reservationId: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
) -> JSONResponse:
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a reservation object.", "reservation")

    def run() -> tuple[dict[str, Any], int]:
        with database.session() as session:
            return service.upsert_reservation(
                session, tenant.resource_id, reservationId, body, settings, utcnow()
            )

    data, status_code = await run_in_threadpool(run)
    return JSONResponse(data, status_code=status_code)


@router.get("/availablePhoneNumbers/reservations/{reservationId}")
def get_reservation(
    reservationId: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
) -> dict[str, Any]:
    with database.session() as session:
        reservation = service.get_reservation(session, tenant.resource_id, reservationId)
        return service.reservation_json(session, reservation, settings, utcnow())


@router.delete("/availablePhoneNumbers/reservations/{reservationId}", status_code=204)
def delete_reservation(reservationId: str, tenant: AuthenticatedTenant, database: AppDatabase) -> Response:
    with database.session() as session:
        service.delete_reservation(session, tenant.resource_id, reservationId, utcnow())
    return Response(status_code=204)


@router.post("/availablePhoneNumbers/reservations/{reservationId}/:purchase", status_code=202)
async def purchase_reservation(
    request: Request,
    reservationId: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    body: ReservationPurchaseRequest = _parse(ReservationPurchaseRequest, await _json_body(request))

    def run() -> NumberOperation:
        with database.session() as session:
            return service.start_reservation_purchase(
                session, tenant.resource_id, reservationId, body.agree_to_not_resell, settings, utcnow()
            )

    operation = await run_in_threadpool(run)
    return _accepted(request, background, database, settings, operation, "reservation-purchase-id")


# Operations ---------------------------------------------------------------------------------------------


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
    data = service.operation_json(operation, _base(request))
    headers = {"Location": data["resourceLocation"]} if "resourceLocation" in data else None
    return JSONResponse(data, headers=headers)


@router.delete("/phoneNumbers/operations/{operationId}", status_code=204)
def cancel_operation(operationId: str, tenant: AuthenticatedTenant, database: AppDatabase) -> Response:
    with database.session() as session:
        service.cancel_operation(session, tenant.resource_id, operationId, utcnow())
    return Response(status_code=204)


# Purchased numbers --------------------------------------------------------------------------------------


@router.get("/phoneNumbers")
def list_phone_numbers(
    request: Request,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    skip: Skip = 0,
    top: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    with database.read_session() as session:
        rows, more = service.list_owned(session, tenant.resource_id, skip, top)
        data: dict[str, Any] = {"phoneNumbers": [service.purchased_json(n) for n in rows]}
    if more:
        data["nextLink"] = service.absolute(_base(request), "/phoneNumbers", skip=skip + top, top=top)
    return data


@router.get("/phoneNumbers/{phoneNumber}")
def get_phone_number(phoneNumber: str, tenant: AuthenticatedTenant, database: AppDatabase) -> dict[str, Any]:
    with database.read_session() as session:
        return service.purchased_json(service.get_owned(session, tenant.resource_id, phoneNumber))


@router.patch("/phoneNumbers/{phoneNumber}/capabilities", status_code=202)
async def update_capabilities(
    request: Request,
    phoneNumber: str,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    background: BackgroundTasks,
) -> JSONResponse:
    body: OptionalCapabilities = _parse(OptionalCapabilities, await _json_body(request))

    def run() -> tuple[NumberOperation, dict[str, Any]]:
        with database.session() as session:
            operation = service.start_update_capabilities(
                session, tenant.resource_id, phoneNumber, body.calling, body.sms
            )
            return operation, service.purchased_json(
                service.get_owned(session, tenant.resource_id, phoneNumber)
            )

    operation, current = await run_in_threadpool(run)
    return _accepted(request, background, database, settings, operation, "capabilities-id", current)


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
            return service.start_release(session, tenant.resource_id, phoneNumber)

    operation = await run_in_threadpool(run)
    return _accepted(request, background, database, settings, operation, "release-id")


# Operator information ------------------------------------------------------------------------------------


@router.post("/operatorInformation/:search")
async def operator_information(request: Request, tenant: AuthenticatedTenant) -> dict[str, Any]:
    body: OperatorInformationRequest = _parse(OperatorInformationRequest, await _json_body(request))
    details = bool(body.options and body.options.include_additional_operator_details)
    return {"values": service.operator_information(body.phone_numbers, details)}


# Operator (admin) API --------------------------------------------------------------------------------


@admin_router.post("/carriers", status_code=201)
def admin_create_carrier(body: CarrierCreate, database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return inventory.carrier_json(inventory.create_carrier(session, body.name, body.kind, body.notes))


@admin_router.get("/carriers")
def admin_list_carriers(database: AppDatabase) -> dict[str, Any]:
    with database.session() as session:
        return {"value": [inventory.carrier_json(c, n) for c, n in inventory.list_carriers(session)]}


@admin_router.delete("/carriers/{name}", status_code=204)
def admin_delete_carrier(name: str, database: AppDatabase) -> Response:
    with database.session() as session:
        inventory.delete_carrier(session, name)
    return Response(status_code=204)


@admin_router.post("/numbers:import")
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
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("The file is not UTF-8.", code="InvalidImportFile") from exc

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


@admin_router.get("/numbers")
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
