"""Wire models of ``Identity/2023-10-01/CommunicationIdentity.json``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field

from gateway.core.text import InputModel

DEFAULT_EXPIRES_MINUTES = 1440


class TokenScope(StrEnum):
    CHAT = "chat"
    VOIP = "voip"
    CHAT_JOIN = "chat.join"
    CHAT_JOIN_LIMITED = "chat.join.limited"
    VOIP_JOIN = "voip.join"


class WireModel(InputModel):
    # The SDKs may add fields in later versions; ACS ignores what it does not know.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CreateIdentityRequest(WireModel):
    create_token_with_scopes: list[TokenScope] | None = Field(default=None, alias="createTokenWithScopes")
    expires_in_minutes: int | None = Field(default=None, alias="expiresInMinutes", ge=60, le=1440)


class IssueTokenRequest(WireModel):
    scopes: list[TokenScope] = Field(min_length=1)
    expires_in_minutes: int | None = Field(default=None, alias="expiresInMinutes", ge=60, le=1440)


class TeamsUserExchangeTokenRequest(WireModel):
    token: str
    app_id: str = Field(alias="appId")
    user_id: str = Field(alias="userId")


class VerifyTokenRequest(WireModel):
    token: str = Field(min_length=1)


class CommunicationIdentity(WireModel):
    id: str


class AccessToken(WireModel):
    token: str
    expires_on: datetime = Field(serialization_alias="expiresOn")


class IdentityAccessTokenResult(WireModel):
    identity: CommunicationIdentity
    access_token: AccessToken | None = Field(default=None, serialization_alias="accessToken")


class VerifiedToken(WireModel):
    identity: CommunicationIdentity
    resource_id: str = Field(serialization_alias="resourceId")
    scopes: list[str]
    expires_on: datetime = Field(serialization_alias="expiresOn")
