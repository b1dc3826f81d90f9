"""ACS's error shape (``{"error": {"code", "message", "target"?}}``) for every failure.

The shape is ``CommunicationErrorResponse`` of ``Common/2022-07-13/common.json``.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class AcsError(Exception):
    """An error answered to the client in ACS's shape."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.target)


def error_body(code: str, message: str, target: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if target:
        error["target"] = target
    return {"error": error}


def error_response(
    status_code: int,
    code: str,
    message: str,
    target: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, target), status_code=status_code, headers=headers)


class BadRequest(AcsError):
    def __init__(self, message: str, target: str | None = None, code: str = "BadRequest") -> None:
        super().__init__(400, code, message, target)


class NotFound(AcsError):
    def __init__(self, message: str, target: str | None = None, code: str = "NotFound") -> None:
        super().__init__(404, code, message, target)


class Conflict(AcsError):
    def __init__(self, message: str, target: str | None = None, code: str = "Conflict") -> None:
        super().__init__(409, code, message, target)


class Unauthorized(AcsError):
    def __init__(self, message: str, code: str = "Denied") -> None:
        super().__init__(401, code, message)


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


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "createTokenWithScopes", 0)`` -> ``createTokenWithScopes[0]``."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or str(loc[0] if loc else "request")


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if not errors:
        return error_response(400, "BadRequest", "The request is invalid.")
    first = errors[0]
    target = _location(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return error_response(400, "BadRequest", "The request body is not valid JSON.")
    message = f"Invalid value for '{target}': {first.get('msg', 'invalid')}."
    if len(errors) > 1:
        others = ", ".join(sorted({_location(e.get("loc", ())) for e in errors[1:]} - {target}))
        if others:
            message += f" Also invalid: {others}."
    return error_response(400, "InvalidRequest", message, target)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AcsError)
    async def _acs_error(_request: Request, exc: AcsError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No such resource or operation."
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, detail, headers=headers)
