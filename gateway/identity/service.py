"""Identity rules: ids, scopes, token lifetimes, revocation and verification."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from gateway.core.errors import AcsError, NotFound
from gateway.core.metrics import TOKENS_ISSUED
from gateway.identity import repository
from gateway.identity.models import Identity
from gateway.identity.schemas import DEFAULT_EXPIRES_MINUTES, AccessToken, TokenScope, VerifiedToken
from gateway.identity.tokens import InvalidToken, Keyring

ID_PREFIX = "8:acs:"


def new_identity_id(resource_id: str) -> str:
    return f"{ID_PREFIX}{resource_id}_{uuid.uuid4()}"


def _unique_scopes(scopes: Sequence[TokenScope]) -> list[str]:
    return list(dict.fromkeys(str(s.value) for s in scopes))


def _identity_of(session: Session, resource_id: str, identity_id: str, *, lock: bool = False) -> Identity:
    identity = repository.identity_of(session, resource_id, identity_id, lock=lock)
    if identity is None:
        # Another resource's identity is reported exactly like one that never existed.
        raise NotFound(f"Identity '{identity_id}' was not found.", "id", code="IdentityNotFound")
    return identity


class IdentityService:
    def __init__(self, keyring: Keyring, issuer: str) -> None:
        self.keyring = keyring
        self.issuer = issuer

    def _issue(
        self, identity: Identity, scopes: Sequence[TokenScope], expires_in_minutes: int | None
    ) -> AccessToken:
        token, expires = self.keyring.issue(
            subject=identity.id,
            resource_id=identity.resource_id,
            scopes=_unique_scopes(scopes),
            generation=identity.token_generation,
            issuer=self.issuer,
            lifetime=timedelta(minutes=expires_in_minutes or DEFAULT_EXPIRES_MINUTES),
            now=datetime.now(UTC),
        )
        TOKENS_ISSUED.inc()
        return AccessToken(token=token, expires_on=expires)

    def create(
        self,
        session: Session,
        resource_id: str,
        scopes: Sequence[TokenScope] | None,
        expires_in_minutes: int | None,
    ) -> tuple[Identity, AccessToken | None]:
        identity = Identity(id=new_identity_id(resource_id), resource_id=resource_id, token_generation=0)
        session.add(identity)
        session.flush()
        token = self._issue(identity, scopes, expires_in_minutes) if scopes else None
        return identity, token

    def issue_token(
        self,
        session: Session,
        resource_id: str,
        identity_id: str,
        scopes: Sequence[TokenScope],
        expires_in_minutes: int | None,
    ) -> AccessToken:
        return self._issue(_identity_of(session, resource_id, identity_id), scopes, expires_in_minutes)

    def revoke_tokens(self, session: Session, resource_id: str, identity_id: str) -> None:
        identity = _identity_of(session, resource_id, identity_id)
        repository.revoke_tokens(session, identity.id, datetime.now(UTC))

    def delete(self, session: Session, resource_id: str, identity_id: str) -> None:
        identity = _identity_of(session, resource_id, identity_id)
        repository.delete_identity(session, identity.id)

    def verify(self, session: Session, token: str, *, resource_id: str | None = None) -> VerifiedToken:
        """Verify a token completely: signature, lifetime, and that it was not revoked or deleted.

        With ``resource_id``, a token of another resource is rejected like a forged one.
        """
        try:
            claims = self.keyring.decode(token, issuer=self.issuer)
        except InvalidToken as exc:
            raise AcsError(401, "InvalidAccessToken", f"The access token is not valid: {exc}.") from exc
        identity = repository.identity_by_id(session, claims["sub"])
        if (
            identity is None
            or identity.resource_id != claims.get("resourceId")
            or (resource_id is not None and identity.resource_id != resource_id)
        ):
            raise AcsError(401, "InvalidAccessToken", "The access token's identity does not exist.")
        if claims.get("gen") != identity.token_generation:
            raise AcsError(401, "InvalidAccessToken", "The access token has been revoked.")
        scopes = [s for s in str(claims.get("acsScope", "")).split(",") if s]
        return VerifiedToken.model_validate(
            {
                "identity": {"id": identity.id},
                "resource_id": identity.resource_id,
                "scopes": scopes,
                "expires_on": datetime.fromtimestamp(int(claims["exp"]), UTC),
            }
        )
