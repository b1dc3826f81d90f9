"""Identity API 2023-10-01 (``Identity/2023-10-01/CommunicationIdentity.json``), plus token verification."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse

from gateway.core.auth import AppDatabase, AuthenticatedTenant, api_version
from gateway.core.errors import AcsError
from gateway.identity.schemas import (
    CreateIdentityRequest,
    IdentityAccessTokenResult,
    IssueTokenRequest,
    TeamsUserExchangeTokenRequest,
    VerifiedToken,
    VerifyTokenRequest,
)
from gateway.identity.service import IdentityService

API_VERSIONS = ("2023-10-01",)

router = APIRouter(tags=["identity"], dependencies=[api_version(*API_VERSIONS)])
public_router = APIRouter(tags=["identity"])


async def identity_service(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.identity
    return service


Identities = Annotated[IdentityService, Depends(identity_service)]


def _json(model: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(
        model.model_dump(mode="json", by_alias=True, exclude_none=True), status_code=status_code
    )


@router.post("/identities", status_code=201, response_model=IdentityAccessTokenResult)
def create_identity(
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    identities: Identities,
    body: Annotated[CreateIdentityRequest | None, Body()] = None,
) -> JSONResponse:
    body = body or CreateIdentityRequest()
    with database.session() as session:
        identity, token = identities.create(
            session, tenant.resource_id, body.create_token_with_scopes, body.expires_in_minutes
        )
        result = IdentityAccessTokenResult.model_validate(
            {"identity": {"id": identity.id}, "access_token": token}
        )
    return _json(result, 201)


@router.delete("/identities/{id}", status_code=204)
def delete_identity(
    id: str, tenant: AuthenticatedTenant, database: AppDatabase, identities: Identities
) -> Response:
    with database.session() as session:
        identities.delete(session, tenant.resource_id, id)
    return Response(status_code=204)


@router.post("/identities/{id}/:revokeAccessTokens", status_code=204)
def revoke_access_tokens(
    id: str, tenant: AuthenticatedTenant, database: AppDatabase, identities: Identities
) -> Response:
    with database.session() as session:
        identities.revoke_tokens(session, tenant.resource_id, id)
    return Response(status_code=204)


@router.post("/identities/{id}/:issueAccessToken")
def issue_access_token(
    id: str,
    body: IssueTokenRequest,
    tenant: AuthenticatedTenant,
    database: AppDatabase,
    identities: Identities,
) -> JSONResponse:
    with database.read_session() as session:
        token = identities.issue_token(session, tenant.resource_id, id, body.scopes, body.expires_in_minutes)
    return _json(token)


@router.post("/teamsUser/:exchangeAccessToken")
def exchange_teams_user_access_token(
    body: TeamsUserExchangeTokenRequest, tenant: AuthenticatedTenant
) -> None:
    raise AcsError(
        501,
        "NotImplemented",
        "Trunkline has no Microsoft Entra ID tenant to validate Teams user tokens against; "
        "the Teams token exchange is not available.",
    )


@router.post("/accessTokens:verify", response_model=VerifiedToken)
def verify_access_token(
    body: VerifyTokenRequest, tenant: AuthenticatedTenant, database: AppDatabase, identities: Identities
) -> JSONResponse:
    """Trunkline's addition: a trusted service checks a token its users present (signature,
    expiry, revocation). Only tokens of the calling resource verify."""
    with database.read_session() as session:
        verified = identities.verify(session, body.token, resource_id=tenant.resource_id)
    return _json(verified)


@public_router.get("/.well-known/openid-configuration")
def openid_configuration(request: Request) -> JSONResponse:
    """Where an app finds the keys that verify call-automation callbacks' bearer JWTs."""
    from gateway.events.callback_auth import issuer_of
    from gateway.events.callback_auth import openid_configuration as document

    issuer = issuer_of(request.app.state.settings.effective_public_endpoint)
    return JSONResponse(document(issuer), headers={"Cache-Control": "public, max-age=300"})


@public_router.get("/.well-known/jwks.json")
def jwks(identities: Identities) -> JSONResponse:
    """Public keys that verify access tokens, for services that check tokens offline."""
    return JSONResponse(identities.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"})
