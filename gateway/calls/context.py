"""The ``incomingCallContext`` of an IncomingCall event: a token naming the call, bound to the
resource it was offered to and valid until the ring timeout, pure (sans-IO).

It is an ES256 JWT signed with the gateway's token signing key (the keys of
gateway.identity.tokens, shared by every process through the data dir or the environment), so
any API process can check it without a database read, and a tenant cannot forge one for a call
of another: the resource id is signed in. The audience keeps it apart from identity tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

from gateway.identity.tokens import ALGORITHM, SigningKey

AUDIENCE = "trunkline:incomingCall"


class InvalidContext(Exception):
    """Not a context this gateway signed, malformed, or tampered with."""


class ExpiredContext(InvalidContext):
    """A genuine context whose ring time is over."""


@dataclass(frozen=True, slots=True)
class IncomingCallContext:
    call_id: str  # the call connection id it will get
    resource_id: str
    expires: datetime


def sign(context: IncomingCallContext, key: SigningKey, issuer: str) -> str:
    claims = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": context.call_id,
        "rid": context.resource_id,
        "exp": int(context.expires.timestamp()),
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


def verify(token: str, keys: Sequence[SigningKey], issuer: str, now: datetime) -> IncomingCallContext:
    """The context ``token`` carries; :class:`ExpiredContext` once ``now`` is past its expiry,
    :class:`InvalidContext` for anything not signed by one of ``keys``."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidContext("malformed incomingCallContext") from exc
    key = next((k for k in keys if k.kid == header.get("kid")), None)
    if key is None or header.get("alg") != ALGORITHM:
        raise InvalidContext("incomingCallContext not signed by this gateway")
    try:
        claims = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=issuer,
            options={"require": ["exp", "sub", "aud", "iss"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidContext(str(exc)) from exc
    call_id, resource_id, exp = claims.get("sub"), claims.get("rid"), claims.get("exp")
    if not isinstance(call_id, str) or not isinstance(resource_id, str) or not isinstance(exp, int):
        raise InvalidContext("incomingCallContext lacks its claims")
    expires = datetime.fromtimestamp(exp, UTC)
    if now >= expires:
        raise ExpiredContext("the call is no longer ringing")
    return IncomingCallContext(call_id, resource_id, expires)
