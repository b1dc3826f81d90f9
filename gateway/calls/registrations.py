"""Trunks that register with their carrier (``--register``): the REGISTER each one needs, and
the outcomes the SIP process records for ``trunkline sip status``.

The SIP process (sip.control.controller) sends one ``Register`` per such trunk to its pool,
whose worker 0 keeps them all (pjsua2 accounts: digest, refresh, retry), again when that
worker is replaced and whenever a trunk's registration settings change; ``Unregister`` when a
trunk stops registering. Why a worker and not Kamailio's ``uac`` module: the same code serves
``--edge none`` and ``--edge kamailio`` (through Kamailio the REGISTER leaves by the edge and its
Contact is the edge's address, so the carrier's INVITEs reach Kamailio's dispatcher), the
worker reports the registrar's last status (uac_reg's RPC gives only flags), and the password
never lands in a plain-text db_text table for Kamailio.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from gateway.calls import repository
from gateway.calls.models import SipTrunk
from sip.worker.messages import Register, RegistrationState

REGISTER_EXPIRES = 300  # seconds asked for; the registrar may grant less


def register_command(trunk: SipTrunk, address: str) -> Register:
    """The REGISTER that keeps ``trunk`` bound to ``address`` (HOST:PORT the trunks reach)."""
    assert trunk.username is not None, "a registered trunk has a username"
    registrar = f"sip:{trunk.host}:{trunk.port}"
    if trunk.transport != "udp":
        registrar += f";transport={trunk.transport}"
    return Register(
        trunk=trunk.name,
        registrar=registrar,
        aor=f"sip:{trunk.username}@{trunk.host}",
        contact=f"<sip:{trunk.username}@{address}>",
        username=trunk.username,
        password=trunk.password or "",
        expires=REGISTER_EXPIRES,
    )


def wanted(session: Session, address: str) -> dict[str, Register]:
    """The REGISTER of every trunk that must be registered now, by trunk name."""
    return {trunk.name: register_command(trunk, address) for trunk in repository.trunks_to_register(session)}


def record(session: Session, state: RegistrationState, now: datetime) -> None:
    """Keep a REGISTER's outcome on its trunk."""
    expires_at = now + timedelta(seconds=state.expires) if state.registered else None
    repository.set_registration(
        session,
        state.trunk,
        "registered" if state.registered else "failed",
        state.status,
        state.reason[:255],
        expires_at,
        now,
    )


def forget(session: Session, trunk: str, now: datetime) -> None:
    """A trunk no longer registered: no outcome to show."""
    repository.set_registration(session, trunk, None, None, None, None, now)


def registration_json(trunk: SipTrunk) -> dict[str, Any]:
    """A trunk's registration as ``trunkline sip status`` and the trunk list show it."""
    return {
        "trunk": trunk.name,
        "state": trunk.registration_state or "pending",
        "status": trunk.registration_status,
        "reason": trunk.registration_reason,
        "expiresAt": trunk.registration_expires_at.isoformat() if trunk.registration_expires_at else None,
        "updatedAt": trunk.registration_updated_at.isoformat() if trunk.registration_updated_at else None,
    }


def registrations(session: Session) -> list[dict[str, Any]]:
    return [registration_json(trunk) for trunk in repository.trunks_to_register(session)]
