"""TURN REST credentials in coturn's ``use-auth-secret`` scheme, sans-IO.

username = "<unix expiry>:<user id>", credential = base64(HMAC-SHA1(secret, username)); the TURN
server recomputes the credential from the username and its ``static-auth-secret`` and refuses a
username whose expiry has passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_on: datetime


def turn_credential(secret: str, user: str, now: datetime, ttl: timedelta) -> TurnCredential:
    if ":" in user:
        # coturn splits the username at the first ':' into expiry and user; keep it unambiguous.
        user = user.replace(":", "-")
    expiry = int((now + ttl).timestamp())
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredential(
        username=username,
        credential=base64.b64encode(digest).decode("ascii"),
        expires_on=datetime.fromtimestamp(expiry, UTC),
    )


def anonymous_user() -> str:
    return secrets.token_hex(8)


def is_valid(secret: str, username: str, credential: str, now: datetime) -> bool:
    """What the TURN server checks, for tests and for operators debugging a setup."""
    expiry, sep, _ = username.partition(":")
    if not sep or not expiry.isdigit() or int(expiry) < int(now.timestamp()):
        return False
    expected = base64.b64encode(
        hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    ).decode("ascii")
    return hmac.compare_digest(expected, credential)
