"""The console's browser session: a cookie signed with a key derived from the operator token,
and a CSRF token derived from the session, so neither needs storage and rotating the operator
token ends every session.

Pure: no web framework; the router sets and reads the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Final

COOKIE_NAME: Final = "__Host-trunkline-console"
MAX_AGE_SECONDS: Final = 12 * 3600


def _key(operator_token: str) -> bytes:
    return hmac.new(operator_token.encode(), b"trunkline console session v1", hashlib.sha256).digest()


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def new_session(operator_token: str, now: float | None = None) -> str:
    """A session cookie value: issued time, a random nonce, and their MAC."""
    body = f"{int(now if now is not None else time.time())}.{secrets.token_urlsafe(16)}"
    return f"{body}.{_mac(_key(operator_token), body)}"


def valid_session(operator_token: str, value: str, now: float | None = None) -> bool:
    """Whether ``value`` was issued with this operator token and has not expired."""
    issued, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not (issued.isdigit() and nonce and mac):
        return False
    if not hmac.compare_digest(mac, _mac(_key(operator_token), f"{issued}.{nonce}")):
        return False
    age = (now if now is not None else time.time()) - int(issued)
    return 0 <= age <= MAX_AGE_SECONDS


def csrf_token(operator_token: str, session: str) -> str:
    """The form token of a session (what a POST from the console must carry)."""
    return _mac(_key(operator_token), f"csrf:{session}")


def valid_csrf(operator_token: str, session: str, token: str) -> bool:
    return hmac.compare_digest(token.encode(), csrf_token(operator_token, session).encode())


def token_matches(operator_token: str, given: str) -> bool:
    return bool(operator_token) and hmac.compare_digest(given.strip().encode(), operator_token.encode())
