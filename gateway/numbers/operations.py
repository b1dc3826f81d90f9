"""Long-running operations of the Phone Numbers API, without a task queue.

An operation is written (``notStarted``) in the same transaction as the request that starts it;
the API answers 202 and runs it in a background thread (``execute``). Running it is two steps:
a claim (``notStarted`` -> ``running``, one conditional UPDATE, so only one runner wins) and the
work itself, done in one transaction together with the final status. If the work fails, its
transaction is rolled back and the failure is recorded in a new one: nothing is half-written.

If the process dies between claim and work (or before the background thread starts), the
operation stays ``notStarted``/``running``. ``refresh`` (called by GET of the operation) treats one
untouched for ``numbers_operation_stale_seconds`` as abandoned and runs it again inline: the work
is all-or-nothing, so running it again is safe. After ``MAX_ATTEMPTS`` it is failed instead.

Each operation type's handler (``@handler``) sits in the module whose ``start_*`` function creates
that operation (searches, purchases, purchased, releases, reservations), so a process that can
create an operation has its handler registered; router.py imports them all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session

from gateway.core.db import Database, new_uuid, utcnow
from gateway.core.errors import NotFound
from gateway.core.settings import Settings
from gateway.numbers.models import NumberOperation
from gateway.numbers.repository import operations as repository

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 3
OPERATION_TYPES = {
    "search": "search",
    "purchase": "purchase",
    "releasePhoneNumber": "release",
    "updatePhoneNumberCapabilities": "capabilities",
    "reservationPurchase": "reservation_purchase",
}

OPERATIONS_FINISHED = Counter(
    "trunkline_number_operations_total", "Phone-number operations finished", ["type", "status"]
)
OPERATION_SECONDS = Histogram(
    "trunkline_number_operation_seconds",
    "Time to run a phone-number operation's work",
    ["type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


class OperationFailure(Exception):
    """Raised by a handler: the operation fails with this ACS error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Handler = Callable[[Session, NumberOperation, Settings, datetime], None]
FailureHook = Callable[[Session, NumberOperation], None]
HANDLERS: dict[str, Handler] = {}
FAILURE_HOOKS: dict[str, FailureHook] = {}


def handler(operation_type: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[operation_type] = function
        return function

    return register


def on_failure(operation_type: str) -> Callable[[FailureHook], FailureHook]:
    def register(function: FailureHook) -> FailureHook:
        FAILURE_HOOKS[operation_type] = function
        return function

    return register


def create_operation(
    session: Session,
    resource_id: str,
    operation_type: str,
    target: str,
    payload: dict[str, Any] | None = None,
    *,
    operation_uuid: str | None = None,
    resource_location: str | None = None,
) -> NumberOperation:
    uid = operation_uuid or new_uuid()
    now = utcnow()
    operation = NumberOperation(
        id=f"{OPERATION_TYPES[operation_type]}_{uid}",
        resource_id=resource_id,
        operation_type=operation_type,
        status="notStarted",
        target=target,
        payload=payload or {},
        resource_location=resource_location,
        created_at=now,
        last_action_at=now,
    )
    session.add(operation)
    session.flush()
    return operation


def get_operation(session: Session, resource_id: str, operation_id: str) -> NumberOperation:
    operation = repository.operation_of(session, resource_id, operation_id)
    if operation is None:
        raise NotFound(f"No operation '{operation_id}'.", "operationId")
    return operation


def _claim(database: Database, operation_id: str, stale_before: datetime | None) -> bool:
    now = utcnow()
    with database.session() as session:
        return repository.claim(session, operation_id, now, stale_before)


def _fail(database: Database, operation_id: str, code: str, message: str) -> None:
    with database.session() as session:
        operation = repository.lock_operation(session, operation_id)
        if operation is None or operation.status in ("succeeded", "failed"):
            return
        operation.status = "failed"
        operation.error_code = code
        operation.error_message = message
        operation.last_action_at = utcnow()
        hook = FAILURE_HOOKS.get(operation.operation_type)
        if hook is not None:
            hook(session, operation)
        OPERATIONS_FINISHED.labels(operation.operation_type, "failed").inc()
        log.info(
            "number operation failed",
            operation_id=operation.id,
            resource_id=operation.resource_id,
            type=operation.operation_type,
            code=code,
        )


def execute(
    database: Database, settings: Settings, operation_id: str, *, stale_before: datetime | None = None
) -> None:
    """Claim and run one operation. Safe to call from any thread or process, any number of times."""
    if not _claim(database, operation_id, stale_before):
        return
    started = utcnow()
    operation_type = "unknown"
    try:
        with database.session() as session:
            operation = repository.lock_operation(session, operation_id)
            if operation is None or operation.status != "running":
                return
            operation_type = operation.operation_type
            if operation.attempts > MAX_ATTEMPTS:
                raise OperationFailure(
                    "UnknownErrorCode",
                    f"The operation was abandoned {MAX_ATTEMPTS} times and will not be retried.",
                )
            HANDLERS[operation.operation_type](session, operation, settings, utcnow())
            operation.status = "succeeded"
            operation.last_action_at = utcnow()
            OPERATIONS_FINISHED.labels(operation.operation_type, "succeeded").inc()
            log.info(
                "number operation succeeded",
                operation_id=operation.id,
                resource_id=operation.resource_id,
                type=operation.operation_type,
            )
    except OperationFailure as failure:
        _fail(database, operation_id, failure.code, failure.message)
    except Exception:
        log.exception("number operation crashed", operation_id=operation_id)
        _fail(database, operation_id, "UnknownErrorCode", "The operation failed unexpectedly.")
    finally:
        OPERATION_SECONDS.labels(operation_type).observe((utcnow() - started).total_seconds())


def refresh(database: Database, settings: Settings, operation_id: str) -> None:
    """Run an operation again if it looks abandoned (see the module docstring)."""
    stale_before = utcnow() - timedelta(seconds=settings.numbers_operation_stale_seconds)
    execute(database, settings, operation_id, stale_before=stale_before)


def cancel(session: Session, resource_id: str, operation_id: str) -> NumberOperation:
    """Cancel an operation that has not started (it fails with OperationCanceled); a finished
    search is cancelled by releasing the numbers it holds. Anything else is left as it is."""
    operation = get_operation(session, resource_id, operation_id)
    now = utcnow()
    if operation.status == "notStarted":
        repository.cancel_if_not_started(session, operation, now)
        if operation.status == "failed" and operation.error_code == "OperationCanceled":
            hook = FAILURE_HOOKS.get(operation.operation_type)
            if hook is not None:
                hook(session, operation)
    return operation
