"""The HTTP answers to errors: FastAPI's exception handlers and the responses they build.

An ``AcsError`` becomes ACS's ``{"error": ...}`` body; a body that does not validate becomes
that body naming the field, or, where the route's api-version answers validation failures as a
problem document (``VALIDATION_PROBLEMS_STATE``, set by ``api_version``), an RFC 9457 problem
with ASP.NET Core's field names; Starlette's own errors (404, 405, ...) get ACS codes.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.core.errors import (
    VALIDATION_PROBLEMS_STATE,
    AcsError,
    InvalidField,
    error_body,
    problem_field_name,
)
from gateway.core.input_errors import location, request_sentence

_HTTP_CODES = {
    400: "BadRequest",
    401: "Denied",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    503: "ServiceUnavailable",
}

PROBLEM_MEDIA_TYPE = "application/problem+json"
# The type and title ASP.NET Core gives a validation problem, as in Sms 2026-01-23's examples.
VALIDATION_PROBLEM_TYPE = "https://tools.ietf.org/html/rfc9110#section-15.5.1"
VALIDATION_PROBLEM_TITLE = "One or more validation errors occurred."


def error_response(
    status_code: int,
    code: str,
    message: str,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, target), status_code=status_code, headers=headers)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "createTokenWithScopes", 0)`` -> ``createTokenWithScopes[0]``."""
    return location(loc)


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if not errors:
        return error_response(400, "BadRequest", "The request is invalid.")
    first = errors[0]
    target = _location(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return error_response(400, "BadRequest", "The request body is not valid JSON.")
    message = request_sentence(first)
    if len(errors) > 1:
        others = ", ".join(sorted({_location(e.get("loc", ())) for e in errors[1:]} - {target}))
        if others:
            message += f" Also invalid: {others}."
    return error_response(400, "InvalidRequest", message, target)


def trace_id() -> str:
    """The request's id as a W3C ``traceparent`` (the form of the traceId in ACS's problem
    documents): its trace id is the request id that ``x-ms-request-id`` carries."""
    request_id = structlog.contextvars.get_contextvars().get("request_id", "")
    try:
        trace = uuid.UUID(request_id).hex
    except ValueError:
        trace = secrets.token_hex(16)
    return f"00-{trace}-{secrets.token_hex(8)}-00"


def problem_response(status_code: int, title: str, problem_type: str, **members: Any) -> JSONResponse:
    """An RFC 9457 problem document with ACS's ``traceId``."""
    body = {"type": problem_type, "title": title, "status": status_code, **members, "traceId": trace_id()}
    return JSONResponse(body, status_code=status_code, media_type=PROBLEM_MEDIA_TYPE)


def validation_problem(errors: dict[str, list[str]]) -> JSONResponse:
    return problem_response(400, VALIDATION_PROBLEM_TITLE, VALIDATION_PROBLEM_TYPE, errors=errors)


def _validation_problem_errors(exc: RequestValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            errors.setdefault("$", []).append("The request body is not valid JSON.")
            continue
        name = problem_field_name(error.get("loc", ()))
        errors.setdefault(name, []).append(request_sentence(error))
    return errors or {"$": ["The request is invalid."]}


def _wants_validation_problems(request: Request) -> bool:
    return bool(getattr(request.state, VALIDATION_PROBLEMS_STATE, False))


def error_answer(exc: AcsError | RequestValidationError, *, validation_problems: bool) -> JSONResponse:
    """The response to an ACS error or a body that does not validate; ``validation_problems``:
    the route's api-version answers validation failures as a problem document."""
    if isinstance(exc, RequestValidationError):
        if validation_problems:
            return validation_problem(_validation_problem_errors(exc))
        return validation_error_response(exc)
    if isinstance(exc, InvalidField) and validation_problems:
        return validation_problem({problem_field_name(exc.target): [exc.message]})
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AcsError)
    async def _acs_error(request: Request, exc: AcsError) -> JSONResponse:
        return error_answer(exc, validation_problems=_wants_validation_problems(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_answer(exc, validation_problems=_wants_validation_problems(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such resource or operation."
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, detail, headers=headers)
