"""What the gateway is doing, on one screen (``trunkline status``, ``/admin/console``).

Composes the domains' own reads: each role's process (``up`` from its local state file, the
workers from their metrics port, the SMPP process from its fresh bind rows, the SIP pool from its
status file, the API from its port), the SMPP binds, the SMS queue, messages per minute by state
over the last five minutes, webhook deliveries pending and dead-lettered, and calls per SIP worker.
It lives beside ``gateway.roles`` because it reads every domain and no domain reads it.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy.orm import Session

from gateway.core.db import autovacuum_enabled
from gateway.core.settings import Settings
from gateway.events import repository as events_repository
from gateway.roles import API, ROLES, SIP, SMPP, UP, Role
from gateway.sms.bind_status import connections_with_status
from gateway.sms.repository import messages as sms_repository

RATE_WINDOW: Final = timedelta(minutes=5)
PORT_TIMEOUT_SECONDS: Final = 0.3


class ProcessState(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(frozen=True)
class ProcessStatus:
    """One role's process as seen from here, and how that was found out."""

    role: str
    state: ProcessState
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"role": self.role, "state": self.state.value, "detail": self.detail}


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def port_answers(host: str, port: int) -> bool:
    """Whether something accepts a TCP connection on ``host:port`` (bounded by a short timeout)."""
    try:
        with socket.create_connection((host, port), timeout=PORT_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def _sip_pool(settings: Settings) -> Any:
    from sip.worker.status import read

    try:
        return read(settings.sip_status_file)
    except (OSError, ValueError):
        return None


def _up_status(settings: Settings, binds: list[dict[str, Any]], sip_pool: Any) -> ProcessStatus | None:
    from gateway.core.local_state import read_local_gateway

    local = read_local_gateway()
    if local is not None and local.running:
        return ProcessStatus(UP.name, ProcessState.UP, f"pid {local.pid}, {local.endpoint}")
    return ProcessStatus(UP.name, ProcessState.DOWN, "no running `trunkline up`")


def _api_status(settings: Settings, binds: list[dict[str, Any]], sip_pool: Any) -> ProcessStatus | None:
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host  # noqa: S104
    state = ProcessState.UP if port_answers(host, settings.api_port) else ProcessState.DOWN
    return ProcessStatus(API.name, state, f"port {settings.api_port}")


def _smpp_status(settings: Settings, binds: list[dict[str, Any]], sip_pool: Any) -> ProcessStatus | None:
    fresh = {b["process"] for c in binds for b in c["binds"] if not b["stale"]}
    if fresh:
        return ProcessStatus(SMPP.name, ProcessState.UP, f"{len(fresh)} publishing bind status")
    return None  # no bind configured or none published: ask its metrics port


def _sip_status(settings: Settings, binds: list[dict[str, Any]], sip_pool: Any) -> ProcessStatus | None:
    if sip_pool is None:
        return None
    if sip_pool.is_stale():
        return ProcessStatus(SIP.name, ProcessState.DOWN, "status file is stale")
    return ProcessStatus(SIP.name, ProcessState.UP, f"{len(sip_pool.workers)} workers")


# How each role is seen, before (or instead of) its metrics port.
_OWN_SIGNS = {UP.name: _up_status, API.name: _api_status, SMPP.name: _smpp_status, SIP.name: _sip_status}


def _process(role: Role, settings: Settings, binds: list[dict[str, Any]], sip_pool: Any) -> ProcessStatus:
    own = _OWN_SIGNS.get(role.name)
    seen = own(settings, binds, sip_pool) if own is not None else None
    if seen is not None:
        return seen
    if role.metrics_port is not None and port_answers("127.0.0.1", role.metrics_port):
        return ProcessStatus(role.name, ProcessState.UP, f"metrics port {role.metrics_port}")
    detail = f"metrics port {role.metrics_port} closed" if role.metrics_port else "not seen"
    return ProcessStatus(role.name, ProcessState.DOWN, detail)


def gather_status(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """Everything ``trunkline status`` shows, as JSON-ready data."""
    connections = connections_with_status(session, now)
    sip_pool = _sip_pool(settings)
    queued = sms_repository.queued_summary(session)
    oldest_age = None
    if queued.oldest_created_at is not None:
        oldest_age = round(max(0.0, (now - queued.oldest_created_at).total_seconds()), 1)
    minutes = RATE_WINDOW.total_seconds() / 60
    per_state = sms_repository.count_by_state_since(session, now - RATE_WINDOW)
    depth = events_repository.queue_depth(session)
    sip_workers = []
    if sip_pool is not None:
        stale = sip_pool.is_stale(time.time())
        sip_workers = [
            {"worker": w.index, "pid": w.pid, "up": w.up and not stale, "calls": w.calls, "free": w.free}
            for w in sip_pool.workers
        ]
    return {
        "generatedAt": _iso(now),
        "processes": [_process(role, settings, connections, sip_pool).as_json() for role in ROLES],
        "binds": [
            {
                "connection": c["name"],
                "state": c["state"],
                "since": c["stateSince"],
                "lastError": c["lastError"],
                "windowInUse": c["windowInUse"],
                "sentLastMinute": c["sentLastMinute"],
                "enabled": c.get("enabled", True),
            }
            for c in connections
        ],
        "smsQueue": {"queued": queued.queued, "oldestQueuedAgeSeconds": oldest_age},
        "messagesPerMinute": {state: round(count / minutes, 2) for state, count in sorted(per_state.items())},
        "webhooks": {
            "outbox": depth.outbox,
            "pending": depth.pending,
            "deadLettered": events_repository.dead_lettered_count(session),
        },
        "sipWorkers": sip_workers,
        "database": {"backend": session.get_bind().dialect.name, "autovacuum": autovacuum_enabled(session)},
    }
