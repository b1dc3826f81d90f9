"""Signing keys and JWT access tokens for ACS identities.

Tokens are ES256 JWTs. Keys live as PEM files in the key directory (one file per key; the
newest signs, all verify) or come from ``TRUNKLINE_TOKEN_SIGNING_KEY``. The ``kid`` is the RFC 7638
thumbprint of the public key, so every node that has the same key agrees on its id. Rotation:
add a key (``trunkline keys rotate``), keep the old one until the longest token it signed (24 h)
has expired, then retire it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Lock
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
AUDIENCE = "acs"
SCOPES = ("chat", "voip", "chat.join", "chat.join.limited", "voip.join")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    created: float

    @classmethod
    def from_pem(cls, pem: bytes, created: float = 0.0) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("token signing keys must be P-256 EC private keys")
        return cls(kid=thumbprint(key.public_key()), private_key=key, created=created)

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(_uint(numbers.x)),
            "y": _b64url(_uint(numbers.y)),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }


def thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"crv": "P-256", "kty": "EC", "x": _b64url(_uint(numbers.x)), "y": _b64url(_uint(numbers.y))},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def generate_key_file(directory: Path) -> Path:
    """Write a new P-256 key (mode 0600) and return its path; it becomes the signing key."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = directory / f"token-key-{stamp}-{thumbprint(key.public_key())[:8]}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


class InvalidToken(Exception):
    """The token is not one of ours, is malformed, expired, or its signature does not verify."""


class Keyring:
    """The signing key and every key still accepted for verification.

    Re-reads the key directory when its listing (names, sizes, modification times) changes, so
    a rotation or retirement by the CLI reaches running processes without a restart.
    """

    def __init__(self, directory: Path, pem_override: str | None = None, *, create: bool = True) -> None:
        self.directory = directory
        self.pem_override = pem_override
        self.create = create
        self._lock = Lock()
        self._listing: tuple[tuple[str, int, int], ...] = ()
        self._keys: list[SigningKey] = []

    def _load(self) -> None:
        keys: list[SigningKey] = []
        if self.pem_override:
            keys.append(SigningKey.from_pem(self.pem_override.encode(), created=float("inf")))
        if self.directory.is_dir():
            # Newest name first, so keys whose mtimes tie (coarse timestamps) still put the
            # newest stamped file first: the sort below is stable.
            for path in sorted(self.directory.glob("*.pem"), reverse=True):
                keys.append(SigningKey.from_pem(path.read_bytes(), created=path.stat().st_mtime))
        if not keys and self.create:
            generate_key_file(self.directory)
            self._load()
            return
        if not keys:
            raise RuntimeError(f"no token signing key in {self.directory}; run `trunkline keys rotate`")
        keys.sort(key=lambda k: k.created, reverse=True)
        self._keys = keys
        self._listing = self._current_listing()

    def _current_listing(self) -> tuple[tuple[str, int, int], ...]:
        if not self.directory.is_dir():
            return ()
        entries = []
        for path in self.directory.glob("*.pem"):
            try:
                stat = path.stat()
            except FileNotFoundError:  # retired between glob and stat
                continue
            entries.append((path.name, stat.st_size, stat.st_mtime_ns))
        return tuple(sorted(entries))

    def keys(self) -> Sequence[SigningKey]:
        with self._lock:
            if not self._keys or self._current_listing() != self._listing:
                self._load()
            return list(self._keys)

    @property
    def signing_key(self) -> SigningKey:
        return self.keys()[0]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys()]}

    def issue(
        self,
        *,
        subject: str,
        resource_id: str,
        scopes: Sequence[str],
        generation: int,
        issuer: str,
        lifetime: timedelta,
        now: datetime,
    ) -> tuple[str, datetime]:
        key = self.signing_key
        expires = now + lifetime
        claims = {
            "iss": issuer,
            "aud": AUDIENCE,
            "sub": subject,
            # skypeid and acsScope are what ACS tokens carry; clients that inspect tokens expect them.
            "skypeid": subject.removeprefix("8:"),
            "acsScope": ",".join(scopes),
            "resourceId": resource_id,
            "gen": generation,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        token = jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, datetime.fromtimestamp(int(expires.timestamp()), UTC)

    def decode(self, token: str, *, issuer: str) -> dict[str, Any]:
        """Verify signature, issuer, audience and lifetime. Revocation is checked by the caller."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        key = next((k for k in self.keys() if k.kid == header.get("kid")), None)
        if key is None or header.get("alg") != ALGORITHM:
            raise InvalidToken("token was not signed by a key of this gateway")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.private_key.public_key(),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        return claims
