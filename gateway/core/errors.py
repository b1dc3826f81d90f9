"""ACS's errors as plain exceptions: what failed, with which code, status and target.

The shape is ``CommunicationErrorResponse`` of ``Common/2022-07-13/common.json``
(``{"error": {"code", "message", "target"?}}``). Where a route's api-version answers its
validation failures as a problem document instead (``Sms/2026-01-23``'s
``BadRequestErrorResponse``: ASP.NET Core's validation problem details, as its ``OptOutAdd``
example shows), ``api_version(..., validation_problems=...)`` marks the request and
``gateway.core.http_errors`` answers that form.

Pure on purpose: services, CLIs and the SMPP worker raise these without importing FastAPI or
Starlette; turning them into HTTP responses is ``gateway.core.http_errors``'s job.
"""

from __future__ import annotations

from typing import Any


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


class BadRequest(AcsError):
    def __init__(self, message: str, target: str | None = None, code: str = "BadRequest") -> None:
        super().__init__(400, code, message, target)


class InvalidField(BadRequest):
    """A 400 about the form of one field of the request body (``field`` in the body's JSON
    names, ``smsRecipients[0].to``; None for the body as a whole). Answered like any
    ``BadRequest``, or listed under that field where the route answers validation problems."""

    def __init__(self, message: str, field: str | None = None, code: str = "InvalidRequest") -> None:
        super().__init__(message, field, code)


class NotFound(AcsError):
    def __init__(self, message: str, target: str | None = None, code: str = "NotFound") -> None:
        super().__init__(404, code, message, target)


class Conflict(AcsError):
    def __init__(self, message: str, target: str | None = None, code: str = "Conflict") -> None:
        super().__init__(409, code, message, target)


class Unauthorized(AcsError):
    def __init__(self, message: str, code: str = "Denied") -> None:
        super().__init__(401, code, message)


# The request attribute (``request.state``) set by api_version() when the route's api-version
# answers validation failures as a problem document.
VALIDATION_PROBLEMS_STATE = "validation_problems"


def problem_field_name(loc: tuple[Any, ...] | list[Any] | str | None) -> str:
    """A field's key in a validation problem, as ASP.NET Core's model binding names it:
    ``("body", "smsRecipients", 0, "to")`` -> ``SmsRecipients[0].To``; the whole body is ``$``."""
    if isinstance(loc, str):
        loc = [int(p) if p.isdigit() else p for p in loc.replace("[", ".").replace("]", "").split(".")]
    name = ""
    for part in loc or ():
        if part == "body" and not name:
            continue
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            text = str(part)
            name += ("." if name else "") + text[:1].upper() + text[1:]
    return name or "$"
