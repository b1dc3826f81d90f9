"""gateway.sms.bind_status: a connection's state from its binds, stale ones left out."""

from __future__ import annotations

from typing import Any

from gateway.sms.bind_status import summary


def bind(state: str, *, stale: bool = False, error: str | None = None, sent: int = 0) -> dict[str, Any]:
    return {
        "state": state,
        "since": "2026-12-06T18:00:00Z",
        "lastError": error,
        "windowInUse": 1,
        "sentLastMinute": sent,
        "stale": stale,
    }


def test_no_fresh_bind_is_unknown() -> None:
    assert summary([])["state"] == "unknown"
    assert summary([bind("bound", stale=True)])["state"] == "unknown"


def test_any_bound_bind_makes_the_connection_bound_and_counts_add_up() -> None:
    result = summary([bind("failing", error="ESME_RBINDFAIL", sent=0), bind("bound", sent=3)])
    assert result["state"] == "bound"
    assert result["sentLastMinute"] == 3
    assert result["windowInUse"] == 2
    assert result["lastError"] == "ESME_RBINDFAIL"
    assert summary([bind("connecting"), bind("failing", error="x")])["state"] == "failing"
