"""FastAPI dependencies for the two kinds of caller: tenants (ACS HMAC) and the operator (bearer).

Which tenant's key signed a request is the resources domain's knowledge
(``gateway.resources.keys.ResourceKeyIndex``); this module asks it through ``TenantKeyIndex``,
the interface it needs, found on ``app.state.resource_keys``, so core imports no domain.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import structlog
from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from gateway.core import hmac_auth
from gateway.core.db import Database
from gateway.core.errors import VALIDATION_PROBLEMS_STATE, AcsError, Unauthorized
from gateway.core.metrics import AUTH_FAILURES
from gateway.core.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# The small dependencies below are ``async def`` on purpose: FastAPI runs a plain ``def``
# dependency in the thread pool, and those hops (tens of microseconds each, several per
# request) were most of a request's cost. None of them blocks.


async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def app_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


AppSettings = Annotated[Settings, Depends(app_settings)]
AppDatabase = Annotated[Database, Depends(app_database)]


@dataclass(frozen=True)
class Tenant:
    """The resource a data-plane request was authenticated as. Every query is scoped by it."""

    resource_id: str


@dataclass(frozen=True)
class SignedCall:
    """A request whose HMAC signature is well formed and fresh; whose key signed it is not known
    yet (that takes a database read: TenantKeyIndex.resolve)."""

    signed: hmac_auth.SignedRequest
    host: str
    body: bytes


def checked_signature(
    method: str,
    scope: Mapping[str, Any],
    headers: Mapping[str, str],
    body: bytes,
    settings: Settings,
) -> SignedCall:
    """The request's HMAC signature checked for form and freshness; Unauthorized if it fails
    (a header it is read from given twice too)."""
    raw_path = scope.get("raw_path") or scope["path"].encode()
    repeated = hmac_auth.repeated_header(scope.get("headers", ()), hmac_auth.SINGLE_VALUED_HEADERS)
    if repeated is not None:
        AUTH_FAILURES.labels("hmac").inc()
        raise Unauthorized(f"The {repeated} header is given more than once.")
    try:
        signed = hmac_auth.prepare(
            method=method,
            raw_path=raw_path.decode("latin-1"),
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
            now=datetime.now(UTC),
            max_skew=timedelta(seconds=settings.hmac_max_clock_skew_seconds),
        )
    except hmac_auth.HmacAuthError as exc:
        AUTH_FAILURES.labels("hmac").inc()
        raise Unauthorized(str(exc)) from exc
    return SignedCall(signed, headers.get("host", ""), body)


async def signed_call(request: Request, settings: AppSettings) -> SignedCall:
    body = await request.body()
    return checked_signature(request.method, request.scope, request.headers, body, settings)


SignedTenantCall = Annotated[SignedCall, Depends(signed_call)]


def no_key_verifies() -> Unauthorized:
    """The answer to a well-formed signature that no current access key verifies."""
    AUTH_FAILURES.labels("hmac").inc()
    return Unauthorized("The request signature does not verify with any access key.")


def bind_tenant(resource_id: str) -> Tenant:
    structlog.contextvars.bind_contextvars(resource_id=resource_id)
    return Tenant(resource_id=resource_id)


class TenantKeyIndex(Protocol):
    """Finds the tenant whose current access key signed a request (implemented by
    ``gateway.resources.keys.ResourceKeyIndex``, which app.py puts on ``app.state``)."""

    def resolve(self, session: Session, signed: hmac_auth.SignedRequest, host: str) -> str | None:
        """The id of the resource whose current key signed the request, else None."""
        ...


async def authenticated_tenant(request: Request, call: SignedTenantCall, database: AppDatabase) -> Tenant:
    index: TenantKeyIndex = request.app.state.resource_keys

    def find_owner() -> str | None:
        with database.read_session() as session:
            return index.resolve(session, call.signed, call.host)

    owner = await run_in_threadpool(find_owner)
    if owner is None:
        raise no_key_verifies()
    return bind_tenant(owner)


AuthenticatedTenant = Annotated[Tenant, Depends(authenticated_tenant)]


# The operator's token is read from Authorization; given twice (or two Hosts), it is refused.
_OPERATOR_SINGLE_HEADERS = frozenset({b"authorization", b"host"})


async def require_operator(request: Request, settings: AppSettings) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings.operator_token.get_secret_value() if settings.operator_token else ""
    repeated = hmac_auth.repeated_header(request.scope.get("headers", ()), _OPERATOR_SINGLE_HEADERS)
    if (
        repeated is not None
        or scheme.lower() != "bearer"
        or not expected
        or not hmac.compare_digest(token.strip().encode(), expected.encode())
    ):
        AUTH_FAILURES.labels("operator").inc()
        raise AcsError(
            401,
            "Denied",
            f"The {repeated} header is given more than once."
            if repeated
            else "The operator API needs 'Authorization: Bearer <TRUNKLINE_OPERATOR_TOKEN>'.",
            headers={"WWW-Authenticate": 'Bearer realm="trunkline-admin"'},
        )


def checked_api_version(value: str | None, supported: tuple[str, ...]) -> str:
    """``?api-version=``'s value if it is one of ``supported``; else the ACS error answering it."""
    if not value:
        raise AcsError(
            400,
            "MissingApiVersionParameter",
            f"The api-version query parameter is required. Supported versions: {', '.join(supported)}.",
            "api-version",
        )
    if value not in supported:
        raise AcsError(
            400,
            "UnsupportedApiVersion",
            f"The api-version '{value}' is not supported. Supported versions: {', '.join(supported)}.",
            "api-version",
        )
    return value


def api_version(*supported: str, validation_problems: tuple[str, ...] = ()) -> Any:
    """A dependency that requires ``?api-version=`` to be one of ``supported``. A request of a
    version in ``validation_problems`` has its validation failures answered as a problem
    document (see gateway.core.http_errors)."""

    # Declared, so that the OpenAPI document lists it (gateway.core.openapi makes it required);
    # checked here, so that a missing or unknown one gets ACS's own error codes.
    declared: Any = Query(
        None,
        alias="api-version",
        description="The API version: " + ", ".join(supported),
        json_schema_extra={"enum": list(supported)},
    )

    async def check(request: Request, value: str | None = declared) -> str:
        value = checked_api_version(value, supported)
        if value in validation_problems:
            setattr(request.state, VALIDATION_PROBLEMS_STATE, True)
        return value

    return Depends(check)
