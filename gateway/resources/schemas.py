from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from gateway.core.text import InputModel
from gateway.resources.models import Resource
from gateway.resources.service import KeyType, connection_string


class CamelModel(InputModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ResourceCreate(CamelModel):
    name: str = Field(min_length=1, max_length=63, description="lowercase letters, digits, inner hyphens")
    endpoint: str | None = Field(
        default=None, description="https URL tenants use; defaults to the gateway's public endpoint"
    )


class KeyRegenerate(CamelModel):
    key_type: KeyType


class ResourceSummary(CamelModel):
    id: str
    name: str
    endpoint: str
    created_at: datetime

    @classmethod
    def of(cls, resource: Resource) -> ResourceSummary:
        return cls(
            id=resource.id, name=resource.name, endpoint=resource.endpoint, created_at=resource.created_at
        )


class ResourceWithKeys(ResourceSummary):
    primary_key: str
    secondary_key: str
    primary_connection_string: str
    secondary_connection_string: str
    connection_string: str

    @classmethod
    def of(cls, resource: Resource) -> ResourceWithKeys:
        primary = connection_string(resource.endpoint, resource.primary_key)
        return cls(
            id=resource.id,
            name=resource.name,
            endpoint=resource.endpoint,
            created_at=resource.created_at,
            primary_key=resource.primary_key,
            secondary_key=resource.secondary_key,
            primary_connection_string=primary,
            secondary_connection_string=connection_string(resource.endpoint, resource.secondary_key),
            connection_string=primary,
        )


class ResourceList(CamelModel):
    value: list[ResourceSummary]
