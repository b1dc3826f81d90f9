"""Identity rules on SQLite and PostgreSQL: ids, tokens, revocation, deletion, verification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.core.db import Database
from gateway.core.errors import AcsError, NotFound
from gateway.identity.models import Identity
from gateway.identity.schemas import TokenScope, VerifiedToken
from gateway.identity.service import IdentityService
from gateway.identity.tokens import Keyring
from gateway.resources import service as resources

ISSUER = "trunkline-test"


@pytest.fixture
def identities(tmp_path: Path) -> IdentityService:
    return IdentityService(Keyring(tmp_path / "keys"), ISSUER)


@pytest.fixture
def tenants(database: Database) -> tuple[str, str]:
    with database.session() as session:
        a = resources.create_resource(session, "tenant-a", "https://a.example/")
        b = resources.create_resource(session, "tenant-b", "https://b.example/")
        return a.id, b.id


def _new(database: Database, identities: IdentityService, resource_id: str) -> str:
    with database.session() as session:
        identity, token = identities.create(session, resource_id, None, None)
        assert token is None
        return identity.id


def _token(
    database: Database,
    identities: IdentityService,
    resource_id: str,
    identity_id: str,
    scopes: list[TokenScope] | None = None,
    minutes: int | None = None,
) -> str:
    with database.session() as session:
        return identities.issue_token(
            session, resource_id, identity_id, scopes or [TokenScope.CHAT], minutes
        ).token


def _verify(
    database: Database, identities: IdentityService, token: str, resource_id: str | None = None
) -> VerifiedToken:
    with database.session() as session:
        return identities.verify(session, token, resource_id=resource_id)


def test_create_without_scopes(
    database: Database, identities: IdentityService, tenants: tuple[str, str]
) -> None:
    a, _ = tenants
    identity_id = _new(database, identities, a)
    assert identity_id.startswith(f"8:acs:{a}_")
    with database.session() as session:
        stored = session.get(Identity, identity_id)
        assert stored is not None
        assert (stored.resource_id, stored.token_generation, stored.tokens_revoked_at) == (a, 0, None)
    assert _new(database, identities, a) != identity_id


def test_create_with_scopes(
    database: Database, identities: IdentityService, tenants: tuple[str, str]
) -> None:
    a, _ = tenants
    before = datetime.now(UTC)
    with database.session() as session:
        identity, token = identities.create(
            session, a, [TokenScope.VOIP, TokenScope.CHAT, TokenScope.VOIP], 60
        )
    assert token is not None
    assert before + timedelta(minutes=60) - timedelta(seconds=1) <= token.expires_on
    assert token.expires_on <= datetime.now(UTC) + timedelta(minutes=60)
    verified = _verify(database, identities, token.token, a)
    assert verified.identity.id == identity.id
    assert verified.resource_id == a
    assert verified.scopes == ["voip", "chat"]  # de-duplicated, order kept
    assert verified.expires_on == token.expires_on


def test_default_lifetime_is_24_hours(
    database: Database, identities: IdentityService, tenants: tuple[str, str]
) -> None:
    a, _ = tenants
    identity_id = _new(database, identities, a)
    with database.session() as session:
        token = identities.issue_token(session, a, identity_id, [TokenScope.CHAT], None)
    remaining = token.expires_on - datetime.now(UTC)
    assert timedelta(hours=24) - timedelta(seconds=5) < remaining <= timedelta(hours=24)


def test_other_resource_cannot_use_identity(
    database: Database, identities: IdentityService, tenants: tuple[str, str]
) -> None:
    a, b = tenants
    identity_id = _new(database, identities, a)
    token = _token(database, identities, a, identity_id)
    with database.session() as session:
        for action in (
            lambda: identities.issue_token(session, b, identity_id, [TokenScope.CHAT], None),
            lambda: identities.revoke_tokens(session, b, identity_id),
            lambda: identities.delete(session, b, identity_id),
        ):
            with pytest.raises(NotFound) as excinfo:
                action()
            assert excinfo.value.code == "IdentityNotFound"
    with pytest.raises(AcsError) as rejected:
        _verify(database, identities, token, b)
    assert (rejected.value.status_code, rejected.value.code) == (401, "InvalidAccessToken")
    # Nothing B tried changed A's identity.
    assert _verify(database, identities, token, a).identity.id == identity_id
    assert _verify(database, identities, token).resource_id == a


def test_unknown_identity(database: Database, identities: IdentityService, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    with database.session() as session, pytest.raises(NotFound):
        identities.issue_token(session, a, f"8:acs:{a}_missing", [TokenScope.CHAT], None)


def test_revocation(database: Database, identities: IdentityService, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    identity_id = _new(database, identities, a)
    earlier = _token(database, identities, a, identity_id)
    with database.session() as session:
        identities.revoke_tokens(session, a, identity_id)
    with pytest.raises(AcsError, match="revoked") as excinfo:
        _verify(database, identities, earlier, a)
    assert excinfo.value.status_code == 401
    later = _token(database, identities, a, identity_id)
    assert _verify(database, identities, later, a).identity.id == identity_id
    with database.session() as session:
        identities.revoke_tokens(session, a, identity_id)
        stored = session.get(Identity, identity_id)
        assert stored is not None
        session.refresh(stored)
        assert stored.token_generation == 2
        assert stored.tokens_revoked_at is not None
    with pytest.raises(AcsError, match="revoked"):
        _verify(database, identities, later, a)


def test_deletion(database: Database, identities: IdentityService, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    identity_id = _new(database, identities, a)
    token = _token(database, identities, a, identity_id)
    with database.session() as session:
        identities.delete(session, a, identity_id)
    with pytest.raises(AcsError, match="does not exist") as excinfo:
        _verify(database, identities, token, a)
    assert excinfo.value.status_code == 401
    with database.session() as session, pytest.raises(NotFound):
        identities.delete(session, a, identity_id)


def test_deleting_the_resource_invalidates_tokens(
    database: Database, identities: IdentityService, tenants: tuple[str, str]
) -> None:
    a, _ = tenants
    identity_id = _new(database, identities, a)
    token = _token(database, identities, a, identity_id)
    with database.session() as session:
        resources.delete_resource(session, a)
    with pytest.raises(AcsError, match="does not exist"):
        _verify(database, identities, token)


def test_token_claiming_another_resource_is_rejected(
    database: Database, identities: IdentityService, tenants: tuple[str, str]
) -> None:
    """A token must name the identity's own resource, even when correctly signed."""
    a, b = tenants
    identity_id = _new(database, identities, a)
    token, _ = identities.keyring.issue(
        subject=identity_id,
        resource_id=b,
        scopes=["chat"],
        generation=0,
        issuer=ISSUER,
        lifetime=timedelta(hours=1),
        now=datetime.now(UTC),
    )
    for resource_id in (None, a, b):
        with pytest.raises(AcsError, match="does not exist"):
            _verify(database, identities, token, resource_id)


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_garbage_token(database: Database, identities: IdentityService, token: str) -> None:
    with pytest.raises(AcsError) as excinfo:
        _verify(database, identities, token)
    assert (excinfo.value.status_code, excinfo.value.code) == (401, "InvalidAccessToken")


def test_other_issuer_is_rejected(
    database: Database, identities: IdentityService, tenants: tuple[str, str], tmp_path: Path
) -> None:
    a, _ = tenants
    identity_id = _new(database, identities, a)
    token = _token(database, identities, a, identity_id)
    elsewhere = IdentityService(identities.keyring, "another-gateway")
    with pytest.raises(AcsError, match="not valid"):
        _verify(database, elsewhere, token)
    stranger = IdentityService(Keyring(tmp_path / "other-keys"), ISSUER)
    with pytest.raises(AcsError, match="not valid"):
        _verify(database, stranger, token)
