"""The in-memory index that finds which resource's key signed a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from gateway.core import hmac_auth
from gateway.core.db import Database
from gateway.resources import service
from gateway.resources.keys import ResourceKeyIndex
from gateway.resources.service import KeyType


def _signed(key: str, host: str = "a.example") -> hmac_auth.SignedRequest:
    now = datetime.now(UTC)
    headers = {k.lower(): v for k, v in hmac_auth.sign_request("POST", "/x", host, b"{}", key, now).items()}
    headers["host"] = host
    return hmac_auth.prepare("POST", "/x", "", headers, b"{}", now, timedelta(minutes=15))


def _create(database: Database, name: str, host: str) -> tuple[str, str, str]:
    with database.session() as session:
        resource = service.create_resource(session, name, f"https://{host}/")
        return resource.id, resource.primary_key, resource.secondary_key


def _resolve(database: Database, index: ResourceKeyIndex, key: str, host: str = "a.example") -> str | None:
    with database.read_session() as session:
        return index.resolve(session, _signed(key, host), host)


def test_finds_the_owner_by_either_key(database: Database) -> None:
    a_id, a_primary, a_secondary = _create(database, "a", "a.example")
    b_id, b_primary, b_secondary = _create(database, "b", "shared.example")
    c_id, c_primary, _ = _create(database, "c", "shared.example")
    index = ResourceKeyIndex()
    assert _resolve(database, index, a_primary) == a_id
    assert _resolve(database, index, a_secondary) == a_id
    # The Host header only orders the search; it never decides the owner.
    assert _resolve(database, index, b_secondary, "a.example") == b_id
    assert _resolve(database, index, c_primary, "shared.example") == c_id
    assert _resolve(database, index, b_primary, "shared.example") == b_id
    assert _resolve(database, index, service.generate_access_key()) is None


def test_sees_new_regenerated_and_deleted_resources(database: Database) -> None:
    a_id, a_primary, a_secondary = _create(database, "a", "a.example")
    index = ResourceKeyIndex()
    assert _resolve(database, index, a_primary) == a_id

    b_id, b_primary, _ = _create(database, "b", "b.example")  # created after the index loaded
    assert _resolve(database, index, b_primary) == b_id

    with database.session() as session:
        new_primary = service.regenerate_key(session, a_id, KeyType.PRIMARY).primary_key
    assert _resolve(database, index, a_primary) is None  # the cached old key is not trusted
    assert _resolve(database, index, new_primary) == a_id
    assert _resolve(database, index, a_secondary) == a_id

    with database.session() as session:
        service.delete_resource(session, b_id)
    assert _resolve(database, index, b_primary) is None


def test_regenerated_key_refused_by_a_warm_index_in_another_process(database: Database) -> None:
    """Two API processes each have an index; a key change through one is seen by the other."""
    a_id, a_primary, _ = _create(database, "a", "a.example")
    here, there = ResourceKeyIndex(), ResourceKeyIndex()
    assert _resolve(database, here, a_primary) == a_id
    assert _resolve(database, there, a_primary) == a_id
    with database.session() as session:
        service.regenerate_key(session, a_id, KeyType.PRIMARY)
    assert _resolve(database, there, a_primary) is None


def test_bad_signatures_do_not_reload(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _create(database, "a", "a.example")
    index = ResourceKeyIndex()
    assert _resolve(database, index, service.generate_access_key()) is None  # first load
    reloads: list[int] = []
    original = index._reload

    def counting_reload(session: Session) -> None:
        reloads.append(1)
        original(session)

    monkeypatch.setattr(index, "_reload", counting_reload)
    for _ in range(5):
        assert _resolve(database, index, service.generate_access_key()) is None
    assert reloads == []
    _create(database, "b", "b.example")
    assert _resolve(database, index, service.generate_access_key()) is None
    assert reloads == [1]


def test_resolve_many_reads_the_stored_keys_once_and_answers_as_resolve(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_id, a_primary, a_secondary = _create(database, "a", "a.example")
    b_id, b_primary, _ = _create(database, "b", "b.example")
    here, there = ResourceKeyIndex(), ResourceKeyIndex()
    assert _resolve(database, there, a_primary) == a_id  # warm, with A's old primary key
    with database.session() as session:
        new_primary = service.regenerate_key(session, a_id, KeyType.PRIMARY).primary_key
    keys = [new_primary, a_secondary, b_primary, service.generate_access_key(), a_primary]
    calls = [(_signed(key), "a.example") for key in keys]
    expected = [a_id, a_id, b_id, None, None]  # the old primary no longer verifies
    single_reads: list[str] = []
    resolve = ResourceKeyIndex.resolve

    def counting_resolve(self: ResourceKeyIndex, *args: object) -> str | None:
        single_reads.append("resolve")
        return resolve(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ResourceKeyIndex, "resolve", counting_resolve)
    with database.read_session() as session:
        assert here.resolve_many(session, calls) == expected
        # only the unknown key and the regenerated one fall back to a resolve of their own
        assert len(single_reads) == 2
        single_reads.clear()
        assert there.resolve_many(session, calls) == expected


def _count_openings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every stored key the index opens (decrypts)."""
    from gateway.resources import keys

    opened: list[str] = []
    real = keys.reveal

    def counting(stored: str, purpose: str) -> str:
        opened.append(stored)
        return real(stored, purpose)

    monkeypatch.setattr(keys, "reveal", counting)
    return opened


def test_keys_are_opened_when_loaded_not_per_request(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _count_openings(monkeypatch)
    a_id, a_primary, a_secondary = _create(database, "a", "a.example")
    b_id, b_primary, _ = _create(database, "b", "b.example")
    index = ResourceKeyIndex()
    for _ in range(20):
        assert _resolve(database, index, a_primary) == a_id
        assert _resolve(database, index, b_primary) == b_id
    with database.read_session() as session:
        batch = [(_signed(a_secondary), "a.example"), (_signed(b_primary), "b.example")]
        assert index.resolve_many(session, batch) == [a_id, b_id]
    assert len(opened) == 4  # two keys of two resources, once


def test_keys_sealed_again_are_opened_once(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``trunkline secrets rotate`` every stored key changes form, not value: the index
    opens each new form once and keeps answering from memory."""
    from gateway.core.db import Base
    from gateway.core.sealed_columns import process_keyring, use_keyring
    from gateway.core.secrets import SecretsKeyring, generate_key
    from gateway.core.secrets_store import reseal

    a_id, a_primary, _ = _create(database, "a", "a.example")
    index = ResourceKeyIndex()
    assert _resolve(database, index, a_primary) == a_id

    rotated = SecretsKeyring([generate_key(), process_keyring().sealing_key()])
    reseal(database, Base.metadata, rotated)
    previous = use_keyring(rotated)
    try:
        opened = _count_openings(monkeypatch)
        for _ in range(10):
            assert _resolve(database, index, a_primary) == a_id
        assert len(opened) == 2  # the primary and secondary key in their new form
    finally:
        use_keyring(previous)
