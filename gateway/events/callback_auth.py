"""The proof that a call-automation callback comes from this gateway, pure.

ACS sends each callback with ``Authorization: Bearer <JWT>``; apps verify it against the keys its
OpenID configuration points to. Trunkline does the same with its token signing keys
(gateway.identity.tokens): the issuer is the gateway's public endpoint, the audience the
resource the call belongs to, and ``/.well-known/openid-configuration`` names the JWKS.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt

from gateway.identity.tokens import ALGORITHM, SigningKey

CALLBACK_TOKEN_LIFETIME = timedelta(minutes=10)
JWKS_PATH = ".well-known/jwks.json"


def issuer_of(public_endpoint: str) -> str:
    """The callbacks' issuer: the public endpoint without its trailing slash."""
    return public_endpoint.rstrip("/")


def callback_token(key: SigningKey, issuer: str, audience: str, now: datetime) -> str:
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + CALLBACK_TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def openid_configuration(issuer: str) -> dict[str, Any]:
    """The discovery document an app fetches from ``{issuer}/.well-known/openid-configuration``."""
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/{JWKS_PATH}",
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
    }
