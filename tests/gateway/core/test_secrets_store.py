"""Every stored secret of every domain: the census by key, and sealing again with the newest key
(``trunkline secrets encrypt/rotate``), on both databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, select, text, type_coerce

from gateway.core.db import Base, Database
from gateway.core.sealed_columns import process_keyring, use_keyring
from gateway.core.secrets import SecretsKeyring, generate_key, sealed_key_id
from gateway.core.secrets_store import PLAIN, census, reseal
from gateway.resources import service
from gateway.resources.models import Resource


def _stored(database: Database) -> list[tuple[str, str]]:
    with database.engine.connect() as connection:
        rows = connection.execute(
            select(type_coerce(Resource.primary_key, Text), type_coerce(Resource.secondary_key, Text))
        ).all()
    return [(row[0], row[1]) for row in rows]


def _keys(database: Database) -> dict[str, tuple[str, str]]:
    with database.read_session() as session:
        return {r.name: (r.primary_key, r.secondary_key) for r in session.scalars(select(Resource))}


def _make(database: Database, *names: str) -> None:
    with database.session() as session:
        for name in names:
            service.create_resource(session, name, "https://gw.example.test/")


def test_rotation_reseals_everything_with_the_new_key(database: Database) -> None:
    _make(database, "one", "two")
    before = _keys(database)
    old = process_keyring().sealing_key()
    assert census(database, Base.metadata) == {old.kid: 4}

    new = generate_key()
    rotated = SecretsKeyring([new, old])
    report = reseal(database, Base.metadata, rotated)
    assert (report.resealed, report.current, report.skipped) == (4, 0, 0)
    assert census(database, Base.metadata) == {new.kid: 4}
    assert all(sealed_key_id(value) == new.kid for pair in _stored(database) for value in pair)

    previous = use_keyring(SecretsKeyring([new]))  # the old key is gone: nothing needs it
    try:
        assert _keys(database) == before
        assert reseal(database, Base.metadata, SecretsKeyring([new])) == (0, 4, 0)  # nothing left to do
    finally:
        use_keyring(previous)


def test_plain_values_are_sealed_and_counted(database: Database) -> None:
    _make(database, "one")
    plain: dict[str, Any] = {}
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE resources SET primary_key = 'cGxhaW4=', secondary_key = 'cGxhaW4y'"))
    plain = _keys(database)
    key = process_keyring().sealing_key()
    assert census(database, Base.metadata) == {PLAIN: 2}

    assert reseal(database, Base.metadata, process_keyring(), plain_only=True) == (2, 0, 0)
    assert census(database, Base.metadata) == {key.kid: 2}
    assert _keys(database) == plain


def test_plain_only_leaves_values_of_older_keys(database: Database) -> None:
    _make(database, "one")
    older = process_keyring().sealing_key()
    newer = SecretsKeyring([generate_key(), older])
    assert reseal(database, Base.metadata, newer, plain_only=True) == (0, 2, 0)
    assert census(database, Base.metadata) == {older.kid: 2}


def test_a_value_changed_meanwhile_is_left_alone(database: Database, monkeypatch: Any) -> None:
    """reseal writes only where the row still holds the value it read."""
    from gateway.core import secrets_store

    _make(database, "one")
    real_rows = secrets_store._rows

    def rows_then_regenerate(database: Database, table: Any, columns: Any) -> Any:
        rows = list(real_rows(database, table, columns))
        if table.name == "resources":
            with database.session() as session:
                service.regenerate_key(session, "one", service.KeyType.PRIMARY)
        return iter(rows)

    monkeypatch.setattr(secrets_store, "_rows", rows_then_regenerate)
    report = reseal(
        database, Base.metadata, SecretsKeyring([generate_key(), process_keyring().sealing_key()])
    )
    assert (report.resealed, report.skipped) == (1, 1)
