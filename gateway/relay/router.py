"""POST /networkTraversal/:issueRelayConfiguration (api-version 2022-03-01-preview)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from gateway.core.auth import AppDatabase, AppSettings, AuthenticatedTenant, api_version
from gateway.relay.schemas import RelayConfiguration, RelayConfigurationRequest
from gateway.relay.service import issue_relay_configuration

API_VERSIONS = ("2022-03-01-preview",)

router = APIRouter(tags=["network traversal"], dependencies=[api_version(*API_VERSIONS)])


@router.post("/networkTraversal/:issueRelayConfiguration", response_model=RelayConfiguration)
def issue_relay(
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    settings: AppSettings,
    body: Annotated[RelayConfigurationRequest | None, Body()] = None,
) -> JSONResponse:
    with database.session() as session:
        config = issue_relay_configuration(
            session, settings, tenant.resource_id, body or RelayConfigurationRequest()
        )
    return JSONResponse(config.model_dump(mode="json", by_alias=True))
