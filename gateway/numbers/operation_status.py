"""What the tenant API does with a long-running operation once started: its status body (GET) and
its cancellation (DELETE; a finished search is cancelled by releasing the numbers it holds).
The runner itself is operations.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from gateway.core.errors import Conflict
from gateway.numbers import operations
from gateway.numbers.acs import absolute
from gateway.numbers.models import NumberOperation
from gateway.numbers.repository import holds as repository
from gateway.numbers.searches import release_search_hold

log = structlog.get_logger(__name__)


def cancel_operation(session: Session, resource_id: str, operation_id: str, now: datetime) -> None:
    operation = operations.cancel(session, resource_id, operation_id)
    if operation.operation_type == "search" and operation.status == "succeeded":
        search = repository.lock_search(session, operation.target)
        if search is not None and search.status == "held":
            release_search_hold(session, search, now)
            log.info("search cancelled, hold released", resource_id=resource_id, search_id=search.id)
    elif operation.status == "running":
        raise Conflict(
            "The operation is running and cannot be cancelled.", "operationId", "OperationNotCancelable"
        )


def operation_json(operation: NumberOperation, base_url: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": operation.id,
        "operationType": operation.operation_type,
        "status": operation.status,
        "createdDateTime": operation.created_at.isoformat().replace("+00:00", "Z"),
        "lastActionDateTime": operation.last_action_at.isoformat().replace("+00:00", "Z"),
    }
    if operation.status == "succeeded" and operation.resource_location:
        data["resourceLocation"] = absolute(base_url, operation.resource_location)
    if operation.status == "failed":
        data["error"] = {
            "code": operation.error_code or "UnknownErrorCode",
            "message": operation.error_message or "",
        }
    return data
