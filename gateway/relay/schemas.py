"""Wire models of ``NetworkTraversal/2022-03-01-preview/CommunicationNetworkTraversal.json``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from gateway.core.text import InputModel

MAX_TTL_SECONDS = 172800


class RouteType(StrEnum):
    ANY = "any"
    NEAREST = "nearest"


class RelayConfigurationRequest(InputModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str | None = None
    route_type: RouteType | None = Field(default=None, alias="routeType")
    ttl: int | None = Field(default=None, ge=0)


class IceServer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    urls: list[str]
    username: str
    credential: str
    route_type: RouteType = Field(serialization_alias="routeType")


class RelayConfiguration(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    expires_on: datetime = Field(serialization_alias="expiresOn")
    ice_servers: list[IceServer] = Field(serialization_alias="iceServers")
