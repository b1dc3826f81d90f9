"""Issue relay configurations from the operator's TURN/STUN servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from gateway.core.errors import AcsError, BadRequest
from gateway.core.metrics import RELAY_CONFIGS_ISSUED
from gateway.core.settings import Settings
from gateway.identity import repository as identities
from gateway.relay.credentials import anonymous_user, turn_credential
from gateway.relay.schemas import IceServer, RelayConfiguration, RelayConfigurationRequest, RouteType


def issue_relay_configuration(
    session: Session, settings: Settings, resource_id: str, request: RelayConfigurationRequest
) -> RelayConfiguration:
    urls_by_route = {
        RouteType.ANY: settings.turn_urls,
        RouteType.NEAREST: settings.turn_nearest_urls or settings.turn_urls,
    }
    if not settings.turn_urls or settings.turn_secret is None:
        raise AcsError(
            503,
            "RelayNotConfigured",
            "No TURN server is configured on this gateway (TRUNKLINE_TURN_URLS, TRUNKLINE_TURN_SECRET).",
        )
    if request.id is not None and identities.identity_id_of(session, resource_id, request.id) is None:
        raise BadRequest("id must be an existing identity of this resource.", "id", code="InvalidIdentity")
    # Per the spec, a ttl above the maximum gets the maximum (the default), not an error.
    ttl = min(
        request.ttl if request.ttl is not None else settings.turn_max_ttl_seconds,
        settings.turn_max_ttl_seconds,
    )
    routes = [request.route_type] if request.route_type else [RouteType.ANY, RouteType.NEAREST]
    now = datetime.now(UTC)
    user = request.id or anonymous_user()
    credential = turn_credential(settings.turn_secret.get_secret_value(), user, now, timedelta(seconds=ttl))
    servers = [
        IceServer(
            urls=list(urls_by_route[route]),
            username=credential.username,
            credential=credential.credential,
            route_type=route,
        )
        for route in routes
    ]
    RELAY_CONFIGS_ISSUED.inc()
    return RelayConfiguration(expires_on=credential.expires_on, ice_servers=servers)
