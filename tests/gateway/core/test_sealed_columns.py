"""Secret columns on both databases: a dump of the tables holds no usable secret, the ORM and the
API still see the plain values, and rows stored before encryption keep working."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from gateway.calls import repository as calls_repository
from gateway.calls import service as calls_service
from gateway.calls.schemas import TrunkSpec
from gateway.core.db import Base, Database, utcnow
from gateway.core.sealed_columns import SealedText, process_keyring, use_keyring
from gateway.core.secrets import SecretsKeyring, TamperedSecret, generate_key, is_sealed
from gateway.core.secrets_store import sealed_columns
from gateway.events.models import EventSubscription
from gateway.resources.models import Resource
from gateway.sms import connections
from gateway.sms.models import SmppConnection
from gateway.sms.schemas import ConnectionCreate
from tests.support.acs import OPERATOR_TOKEN, AcsClient

SMPP_PASSWORD = "smpp-pw1"
SIP_PASSWORD = "sip-password-0123456789"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"w" * 32).decode()
OLD_WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()


def _store_every_kind_of_secret(database: Database, resource_id: str) -> None:
    with database.session() as session:
        connections.add_connection(
            session,
            ConnectionCreate(name="smsc", host="127.0.0.1", port=2775, system_id="u", password=SMPP_PASSWORD),
        )
        calls_repository.add_carrier(session, "carrier", "sip", "")
        calls_service.add_trunk(
            session,
            TrunkSpec.model_validate(
                {
                    "name": "trunk",
                    "carrier": "carrier",
                    "host": "192.0.2.1",
                    "username": "u",
                    "password": SIP_PASSWORD,
                }
            ),
        )
        session.add(
            EventSubscription(
                resource_id=resource_id,
                endpoint_url="https://hooks.example.com/",
                event_types=["Microsoft.Communication.SMSReceived"],
                delivery_schema="EventGridSchema",
                max_delivery_attempts=30,
                event_ttl_minutes=1440,
                secret=WEBHOOK_SECRET,
                previous_secret=OLD_WEBHOOK_SECRET,
                previous_secret_expires_at=utcnow() + timedelta(hours=1),
                status="active",
                validation_code="code",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )


def _dump(database: Database) -> list[str]:
    """Every value of every table, as a database dump would show it."""
    values: list[str] = []
    with database.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(text(f"SELECT * FROM {table.name}")):
                values.extend(str(value) for value in row if value is not None)
    return values


def test_every_secret_column_is_sealed() -> None:
    names = {f"{c.table.name}.{c.column.name}" for c in sealed_columns(Base.metadata)}
    assert names == {
        "resources.primary_key",
        "resources.secondary_key",
        "smpp_connections.password",
        "sip_trunks.password",
        "event_subscriptions.secret",
        "event_subscriptions.previous_secret",
    }
    for column in sealed_columns(Base.metadata):
        assert column.purpose == f"{column.table.name}.{column.column.name}"


def test_a_dump_shows_no_usable_secret(
    client: TestClient, database: Database, resource_a: dict[str, Any], acs_a: AcsClient
) -> None:
    _store_every_kind_of_secret(database, resource_a["id"])
    secrets = [resource_a["primaryKey"], resource_a["secondaryKey"], SMPP_PASSWORD, SIP_PASSWORD]
    secrets += [WEBHOOK_SECRET, OLD_WEBHOOK_SECRET]

    dump = _dump(database)
    for secret in secrets:
        assert not any(secret in value for value in dump), secret
    with database.engine.connect() as connection:
        for column in sealed_columns(Base.metadata):
            query = f"SELECT {column.column.name} FROM {column.table.name}"
            stored = [value for (value,) in connection.execute(text(query)) if value is not None]
            assert stored, column
            assert all(is_sealed(value) for value in stored), column

    # Nothing the database holds signs a request: only the real key does.
    assert acs_a.create_identity().status_code == 201
    candidates = _key_candidates(dump)
    assert candidates
    for candidate in candidates:
        assert AcsClient(client, candidate).create_identity().status_code == 401

    # The ORM, the API and the SDK flows see the plain values.
    with database.session() as session:
        assert (
            session.get(SmppConnection, connections.get_connection(session, "smsc").id).password
            == SMPP_PASSWORD
        )
        assert calls_service.get_trunk(session, "trunk").password == SIP_PASSWORD
        subscription = session.query(EventSubscription).one()
        assert (subscription.secret, subscription.previous_secret) == (WEBHOOK_SECRET, OLD_WEBHOOK_SECRET)
    shown = client.get(
        f"/admin/resources/{resource_a['id']}", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert shown.json()["primaryKey"] == resource_a["primaryKey"]


def _key_candidates(dump: list[str]) -> set[str]:
    """Whatever in a dump could be an access key: any value, or part of a sealed one, that is the
    base64 of 32 bytes, and the bytes of every sealed value's payload."""
    candidates: set[str] = set()
    for value in dump:
        for part in [value, *value.split(":")]:
            try:
                raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            except ValueError:
                continue
            for start in range(0, max(1, len(raw) - 31), 4):
                chunk = raw[start : start + 32]
                if len(chunk) == 32:
                    candidates.add(base64.b64encode(chunk).decode())
    return candidates


def test_rows_stored_in_plain_text_keep_working(
    client: TestClient, database: Database, resource_a: dict[str, Any]
) -> None:
    """A database of an earlier version holds plain values: they read as they are."""
    plain_key = base64.b64encode(b"k" * 32).decode()
    with database.session() as session:
        connections.add_connection(
            session, ConnectionCreate(name="old", host="127.0.0.1", port=2775, system_id="u", password="x")
        )
    with database.engine.begin() as connection:
        connection.execute(
            text("UPDATE resources SET primary_key = :key WHERE id = :id"),
            {"key": plain_key, "id": resource_a["id"]},
        )
        connection.execute(text("UPDATE smpp_connections SET password = 'legacy'"))
    with database.session() as session:
        assert session.get(Resource, resource_a["id"]).primary_key == plain_key  # type: ignore[union-attr]
        assert connections.get_connection(session, "old").password == "legacy"
    assert AcsClient(client, plain_key).create_identity().status_code == 201


def test_a_tampered_value_fails_loudly(database: Database, resource_a: dict[str, Any]) -> None:
    with database.engine.begin() as connection:
        stored = connection.execute(
            text("SELECT secondary_key FROM resources WHERE id = :id"), {"id": resource_a["id"]}
        ).scalar_one()
        connection.execute(
            text("UPDATE resources SET primary_key = :value WHERE id = :id"),
            {"value": stored, "id": resource_a["id"]},
        )
    # The secondary key's sealed value copied over the primary: it does not open there.
    with pytest.raises(TamperedSecret), database.session() as session:
        session.get(Resource, resource_a["id"])


def test_the_installed_keyring_wins_over_the_settings() -> None:
    mine = SecretsKeyring([generate_key()])
    previous = use_keyring(mine)
    try:
        assert process_keyring() is mine
        sealed = SealedText("t.c").process_bind_param("x", None)  # type: ignore[arg-type]
        assert sealed is not None
        assert mine.open(sealed, "t.c") == "x"
    finally:
        use_keyring(previous)
    assert process_keyring() is not mine
