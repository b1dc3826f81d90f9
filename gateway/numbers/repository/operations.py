"""SQL of long-running operations: reading one, claiming it for a runner, locking it to finish
it, and cancelling one that has not started.

A claim is one conditional UPDATE, so of any number of runners exactly one wins; finishing takes
the row lock (``SELECT ... FOR UPDATE``) so the work and the final status commit together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from gateway.numbers.models import NumberOperation


def operation_of(session: Session, resource_id: str, operation_id: str) -> NumberOperation | None:
    return session.scalar(
        select(NumberOperation).where(
            NumberOperation.id == operation_id, NumberOperation.resource_id == resource_id
        )
    )


def lock_operation(session: Session, operation_id: str) -> NumberOperation | None:
    return session.get(NumberOperation, operation_id, with_for_update=True)


def claim(session: Session, operation_id: str, now: datetime, stale_before: datetime | None) -> bool:
    """Mark the operation ``running`` (one attempt more) if it is ``notStarted`` or, with
    ``stale_before``, if it is ``notStarted``/``running`` untouched since then; whether it was."""
    claimable = NumberOperation.status == "notStarted"
    if stale_before is not None:
        claimable = or_(
            and_(NumberOperation.status == "notStarted", NumberOperation.last_action_at < stale_before),
            and_(NumberOperation.status == "running", NumberOperation.last_action_at < stale_before),
        )
    result = session.execute(
        update(NumberOperation)
        .where(NumberOperation.id == operation_id, claimable)
        .values(status="running", last_action_at=now, attempts=NumberOperation.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def cancel_if_not_started(session: Session, operation: NumberOperation, now: datetime) -> None:
    """Fail ``operation`` with OperationCanceled if it is still ``notStarted``, then re-read it:
    its status says whether the cancel won against a runner's claim."""
    session.execute(
        update(NumberOperation)
        .where(NumberOperation.id == operation.id, NumberOperation.status == "notStarted")
        .values(
            status="failed",
            error_code="OperationCanceled",
            error_message="The operation was cancelled.",
            last_action_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(operation)
