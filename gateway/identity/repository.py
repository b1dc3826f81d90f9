"""SQL of the identity domain: identities, their token generation (revocation) and deletion."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gateway.identity.models import Identity


def identity_of(
    session: Session, resource_id: str, identity_id: str, *, lock: bool = False
) -> Identity | None:
    """The resource's identity with this id (another resource's is None), locked if ``lock``."""
    query = select(Identity).where(Identity.id == identity_id, Identity.resource_id == resource_id)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def identity_id_of(session: Session, resource_id: str, identity_id: str) -> str | None:
    """``identity_id`` if it is an identity of the resource, else None (reads the id only)."""
    return session.scalar(
        select(Identity.id).where(Identity.id == identity_id, Identity.resource_id == resource_id)
    )


def identity_by_id(session: Session, identity_id: str) -> Identity | None:
    return session.get(Identity, identity_id)


def revoke_tokens(session: Session, identity_id: str, now: datetime) -> None:
    """Bump the identity's token generation: its tokens issued so far stop verifying. A single
    UPDATE increments atomically even when two revocations race."""
    session.execute(
        update(Identity)
        .where(Identity.id == identity_id)
        .values(token_generation=Identity.token_generation + 1, tokens_revoked_at=now)
    )


def delete_identity(session: Session, identity_id: str) -> None:
    session.execute(delete(Identity).where(Identity.id == identity_id))
