"""What the operator is shown of each SMPP connection's binds (``trunkline smpp list``,
``GET /admin/smpp/connections``): the status the SMPP processes publish every second in
``smpp_bind_status``, a row not refreshed for ``STALE_AFTER_SECONDS`` being a process gone.

A connection's summary: ``bound`` when any fresh bind of it is bound, else ``failing`` or
``connecting`` (the fresh binds' own words), else ``unknown``: no SMPP process publishes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from gateway.sms.connections import connection_json, list_connections
from gateway.sms.models import SmppBindStatus
from gateway.sms.repository import connections as repository

STALE_AFTER_SECONDS: Final = 5.0
UNKNOWN: Final = "unknown"
# Which bind speaks for the connection, best first.
_SUMMARY_ORDER: Final = ("bound", "failing", "connecting", "stopped")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def bind_json(row: SmppBindStatus, now: datetime) -> dict[str, Any]:
    return {
        "process": row.process,
        "state": row.health,
        "since": _iso(row.since),
        "lastError": row.last_error or None,
        "windowInUse": row.window_in_use,
        "sentLastMinute": row.sent_last_minute,
        "updatedAt": _iso(row.updated_at),
        "stale": now - row.updated_at > timedelta(seconds=STALE_AFTER_SECONDS),
    }


def summary(binds: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The connection's state from its binds' (stale ones say nothing about now)."""
    fresh = [b for b in binds if not b["stale"]]
    if not fresh:
        return {
            "state": UNKNOWN,
            "stateSince": None,
            "lastError": None,
            "windowInUse": 0,
            "sentLastMinute": 0,
        }
    rank = {state: index for index, state in enumerate(_SUMMARY_ORDER)}
    best = min(fresh, key=lambda b: (rank.get(b["state"], len(rank)), b["since"]))
    errors = [b["lastError"] for b in fresh if b["lastError"]]
    return {
        "state": best["state"],
        "stateSince": best["since"],
        "lastError": best["lastError"] or (errors[0] if errors else None),
        "windowInUse": sum(b["windowInUse"] for b in fresh),
        "sentLastMinute": sum(b["sentLastMinute"] for b in fresh),
    }


def connections_with_status(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Every connection's settings, its state and its binds (one per SMPP process)."""
    binds: dict[str, list[dict[str, Any]]] = {}
    for row in repository.bind_statuses(session):
        binds.setdefault(row.connection_id, []).append(bind_json(row, now))
    result = []
    for connection in list_connections(session):
        own = binds.get(connection.id, [])
        result.append(connection_json(connection) | summary(own) | {"binds": own})
    return result
