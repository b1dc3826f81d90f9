"""Standard Webhooks signatures (``webhook-id``/``webhook-timestamp``/``webhook-signature``).

Pure: ``sign_headers`` takes the secrets, the message id, a Unix timestamp and the exact body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secrets start with whsec_")
    key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    if not key:
        raise ValueError("empty webhook secret")
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``."""
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_headers(secrets_: Iterable[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers; one signature per secret (current and, during rotation, previous)."""
    signatures = [signature(s, message_id, timestamp, body) for s in dict.fromkeys(secrets_)]
    if not signatures:
        raise ValueError("at least one secret is needed")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
