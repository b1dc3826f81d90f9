"""SQL of the resources domain: resources by name or id, and the key reads behind request
signing (``keys.ResourceKeyIndex``)."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from sqlalchemy import Table, Text, bindparam, delete, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from gateway.resources.models import Resource


class StoredKeys(NamedTuple):
    """A resource's two access keys as stored: sealed (gateway/core/secrets.py), or base64 in
    plain text from before encryption; the key index opens them."""

    primary_key: str
    secondary_key: str


class ResourceKeys(NamedTuple):
    """A resource's id, endpoint host and stored keys: one entry of the key index."""

    id: str
    endpoint_host: str
    primary_key: str
    secondary_key: str


def resource_id_named(session: Session, name: str) -> str | None:
    return session.scalar(select(Resource.id).where(Resource.name == name))


def all_resources(session: Session) -> list[Resource]:
    """Every resource, oldest first."""
    return list(session.scalars(select(Resource).order_by(Resource.created_at, Resource.name)))


def resource_by_id_or_name(session: Session, id_or_name: str, *, for_update: bool = False) -> Resource | None:
    query = select(Resource).where(or_(Resource.id == id_or_name, Resource.name == id_or_name))
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def delete_resource(session: Session, resource_id: str) -> None:
    session.execute(delete(Resource).where(Resource.id == resource_id))


# Keys ------------------------------------------------------------------------------------------


def keys_fingerprint(session: Session) -> tuple[Any, ...]:
    """The row count and newest key change of the table: changes whenever a key the index may
    hold changes (a resource created, deleted, or its key regenerated)."""
    row = session.execute(select(func.count(Resource.id), func.max(Resource.keys_rotated_at))).one()
    return tuple(row)


# Built once: these reads run on every signed request, and building the statement took longer
# than running it. They read the keys as stored, not opened by the column type: the index opens
# a stored form once and recognises it afterwards.
_resources = cast(Table, Resource.__table__)
_STORED_PRIMARY = type_coerce(_resources.c.primary_key, Text).label("primary_key")
_STORED_SECONDARY = type_coerce(_resources.c.secondary_key, Text).label("secondary_key")
_ALL_KEYS = select(_resources.c.id, _resources.c.endpoint_host, _STORED_PRIMARY, _STORED_SECONDARY)
_STORED_KEYS = select(_STORED_PRIMARY, _STORED_SECONDARY).where(_resources.c.id == bindparam("resource_id"))
_STORED_KEYS_OF_MANY = select(_resources.c.id, _STORED_PRIMARY, _STORED_SECONDARY).where(
    _resources.c.id.in_(bindparam("resource_ids", expanding=True))
)


def all_keys(session: Session) -> list[ResourceKeys]:
    return [ResourceKeys(*row) for row in session.execute(_ALL_KEYS).all()]


def stored_keys(session: Session, resource_id: str) -> StoredKeys | None:
    row = session.connection().execute(_STORED_KEYS, {"resource_id": resource_id}).one_or_none()
    return None if row is None else StoredKeys(row.primary_key, row.secondary_key)


def stored_keys_of(session: Session, resource_ids: set[str]) -> dict[str, StoredKeys]:
    rows = session.connection().execute(_STORED_KEYS_OF_MANY, {"resource_ids": sorted(resource_ids)})
    return {row.id: StoredKeys(row.primary_key, row.secondary_key) for row in rows}
