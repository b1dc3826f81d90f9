"""Which trunks register and the REGISTER each needs; outcomes kept on the trunk (real database,
SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from gateway.calls import registrations, repository
from gateway.calls.models import SipTrunk
from gateway.core.db import Database, utcnow
from sip.worker.messages import Register, RegistrationState


def add_trunk(database: Database, name: str, **values: object) -> None:
    with database.session() as session:
        carrier = repository.carrier_by_name(session, "acme") or repository.add_carrier(
            session, "acme", "sip", ""
        )
        row = {"name": name, "carrier_id": carrier.id, "host": "sip.acme.example", "port": 5060}
        row.update(values)
        repository.add_trunk(session, row)


def test_only_enabled_trunks_with_register_and_credentials_register(database: Database) -> None:
    add_trunk(database, "reg", username="acct", password="pw", register=True)
    add_trunk(database, "tls", username="acct2", password="pw2", register=True, transport="tls", port=5061)
    add_trunk(database, "plain", username="acct3", password="pw3")
    add_trunk(database, "off", username="acct4", password="pw4", register=True, enabled=False)
    with database.read_session() as session:
        wanted = registrations.wanted(session, "203.0.113.5:5060")
    assert sorted(wanted) == ["reg", "tls"]
    assert wanted["reg"] == Register(
        trunk="reg",
        registrar="sip:sip.acme.example:5060",
        aor="sip:acct@sip.acme.example",
        contact="<sip:acct@203.0.113.5:5060>",  # where the carrier's INVITEs must come: the edge
        username="acct",
        password="pw",  # unsealed for the worker only
        expires=registrations.REGISTER_EXPIRES,
    )
    assert wanted["tls"].registrar == "sip:sip.acme.example:5061;transport=tls"


def test_an_outcome_is_kept_on_the_trunk_and_forgotten_when_it_stops(database: Database) -> None:
    add_trunk(database, "reg", username="acct", password="pw", register=True)
    now = utcnow()
    with database.session() as session:
        registrations.record(session, RegistrationState("reg", True, 200, "OK", 120), now)
    with database.read_session() as session:
        [shown] = registrations.registrations(session)
        trunk = repository.trunk_by_name(session, "reg")
        assert isinstance(trunk, SipTrunk)
        assert trunk.registration_expires_at == now + timedelta(seconds=120)
    assert (shown["trunk"], shown["state"], shown["status"], shown["reason"]) == (
        "reg",
        "registered",
        200,
        "OK",
    )
    with database.session() as session:
        registrations.record(session, RegistrationState("reg", False, 403, "Forbidden"), now)
    with database.read_session() as session:
        [shown] = registrations.registrations(session)
    assert (shown["state"], shown["status"], shown["expiresAt"]) == ("failed", 403, None)
    with database.session() as session:
        registrations.forget(session, "reg", now)
    with database.read_session() as session:
        [shown] = registrations.registrations(session)
    assert shown["state"] == "pending"
