"""Rules for communication resources: naming, keys, connection strings."""

from __future__ import annotations

import base64
import re
import secrets
from enum import StrEnum
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.core.db import utcnow
from gateway.core.errors import BadRequest, Conflict, NotFound
from gateway.resources import repository
from gateway.resources.models import Resource

NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class KeyType(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


def generate_access_key() -> str:
    """A random 256-bit key, base64 as ACS hands them out."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def connection_string(endpoint: str, key: str) -> str:
    return f"endpoint={endpoint};accesskey={key}"


def normalise_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise BadRequest(
            "endpoint must be an https URL with a host, like https://sms.example.com/", "endpoint"
        )
    return f"https://{parts.netloc}/"


def create_resource(session: Session, name: str, endpoint: str) -> Resource:
    if not NAME_PATTERN.match(name):
        raise BadRequest(
            "name must be 1-63 lowercase letters, digits or inner hyphens", "name", code="InvalidResourceName"
        )
    endpoint = normalise_endpoint(endpoint)
    if repository.resource_id_named(session, name) is not None:
        raise Conflict(f"A resource named '{name}' already exists.", "name", code="ResourceAlreadyExists")
    resource = Resource(
        name=name,
        endpoint=endpoint,
        endpoint_host=urlsplit(endpoint).netloc.lower(),
        primary_key=generate_access_key(),
        secondary_key=generate_access_key(),
    )
    session.add(resource)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise Conflict(
            f"A resource named '{name}' already exists.", "name", code="ResourceAlreadyExists"
        ) from exc
    return resource


def list_resources(session: Session) -> list[Resource]:
    return repository.all_resources(session)


def get_resource(session: Session, id_or_name: str, *, for_update: bool = False) -> Resource:
    resource = repository.resource_by_id_or_name(session, id_or_name, for_update=for_update)
    if resource is None:
        raise NotFound(f"No resource '{id_or_name}'.", "resource", code="ResourceNotFound")
    return resource


def delete_resource(session: Session, id_or_name: str) -> None:
    from datetime import timedelta

    from gateway.core.settings import get_settings
    from gateway.numbers.releases import forget_resource

    resource = get_resource(session, id_or_name)
    quarantine = timedelta(minutes=get_settings().numbers_release_quarantine_minutes)
    forget_resource(session, resource.id, utcnow(), quarantine)
    repository.delete_resource(session, resource.id)


def regenerate_key(session: Session, id_or_name: str, key_type: KeyType) -> Resource:
    resource = get_resource(session, id_or_name, for_update=True)
    if key_type is KeyType.PRIMARY:
        resource.primary_key = generate_access_key()
    else:
        resource.secondary_key = generate_access_key()
    resource.keys_rotated_at = utcnow()
    session.flush()
    return resource
