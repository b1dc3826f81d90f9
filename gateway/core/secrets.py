"""Secrets at rest: authenticated encryption of the secrets the database keeps.

Access keys, SMPP and SIP passwords and webhook signing secrets must be recoverable (the gateway
signs and verifies with them), so they are encrypted, not hashed, with a key-encryption key kept
outside the database. AES-256-GCM, not Fernet: it authenticates a context (the format version,
the key id and the column a value belongs to) besides the ciphertext, so a value copied into
another column fails to open, and it costs 28 bytes a value where Fernet costs 57 and a timestamp.
MultiFernet finds the key by trying each one; here the stored value names its key.

A stored value is ``tlsec1:<kid>:<base64url(nonce | ciphertext | tag)>``. The prefix marks it
as sealed (anything else is a plain value from before encryption, read as it is), ``1`` is the
format version, ``kid`` the id of the key that sealed it, derived from the key itself so every
node that has the key agrees on it. Several keys open; the newest seals (rotation).

Pure but for the key files: no settings, no database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from threading import Lock

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "tlsec1"
PREFIX = FORMAT + ":"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE_GLOB = "secrets-key-*.key"


class SecretsError(Exception):
    """A secret could not be sealed or opened."""


class NoSecretsKey(SecretsError):
    """There is no key to seal with."""


class UnknownSecretsKey(SecretsError):
    """A sealed value names a key this process does not have (retired, or not configured here)."""


class TamperedSecret(SecretsError):
    """A sealed value is malformed, was altered, or belongs to another column."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(material: bytes) -> str:
    """The id of a key: a short digest of it, the same on every node that has the key."""
    return _b64url(hashlib.sha256(b"trunkline secrets key id\0" + material).digest()[:6])


@dataclass(frozen=True)
class SecretsKey:
    """One key-encryption key (256 bits) and its id."""

    material: bytes = field(repr=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise ValueError(f"a secrets key is {KEY_BYTES} bytes")
        object.__setattr__(self, "kid", key_id(self.material))

    @classmethod
    def parse(cls, text: str) -> SecretsKey:
        """A key written as base64 (standard or url-safe, padded or not) of 32 random bytes."""
        value = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
        try:
            material = _unb64url(value)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a secrets key is the base64 of 32 random bytes") from exc
        if len(material) != KEY_BYTES:
            raise ValueError(f"a secrets key is the base64 of {KEY_BYTES} random bytes, not {len(material)}")
        return cls(material)

    def text(self) -> str:
        return _b64url(self.material)


def generate_key() -> SecretsKey:
    return SecretsKey(os.urandom(KEY_BYTES))


def parse_keys(text: str) -> list[SecretsKey]:
    """``TRUNKLINE_SECRETS_KEYS``: keys separated by commas, the first seals."""
    return [SecretsKey.parse(part) for part in text.replace("\n", ",").split(",") if part.strip()]


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def sealed_key_id(stored: str) -> str | None:
    """The id of the key a stored value was sealed with; None for a plain value."""
    if not is_sealed(stored):
        return None
    kid, separator, _payload = stored[len(PREFIX) :].partition(":")
    return kid if separator else None


def _context(kid: str, purpose: str) -> bytes:
    return f"{FORMAT}:{kid}:{purpose}".encode()


def seal(key: SecretsKey, plaintext: str, purpose: str) -> str:
    """``plaintext`` encrypted with ``key`` for the column named ``purpose``."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.material).encrypt(nonce, plaintext.encode(), _context(key.kid, purpose))
    return f"{PREFIX}{key.kid}:{_b64url(nonce + sealed)}"


def open_sealed(keys: Iterable[SecretsKey], stored: str, purpose: str) -> str:
    """The plaintext of a sealed value (a plain value is returned as it is)."""
    if not is_sealed(stored):
        return stored
    kid, separator, payload = stored[len(PREFIX) :].partition(":")
    if not separator:
        raise TamperedSecret("a sealed secret without its key id")
    key = next((k for k in keys if k.kid == kid), None)
    if key is None:
        raise UnknownSecretsKey(f"a secret is sealed with key {kid}, which is not configured here")
    try:
        data = _unb64url(payload)
    except (binascii.Error, ValueError) as exc:
        raise TamperedSecret(f"a secret sealed with key {kid} is not base64") from exc
    if len(data) < NONCE_BYTES + 16:
        raise TamperedSecret(f"a secret sealed with key {kid} is too short")
    try:
        plain = AESGCM(key.material).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], _context(kid, purpose))
    except InvalidTag as exc:
        raise TamperedSecret(f"a secret sealed with key {kid} does not authenticate ({purpose})") from exc
    return plain.decode()


# Key files ----------------------------------------------------------------------------------------


def key_files(directory: Path) -> list[Path]:
    """The key files of a directory, newest first (their names start with a timestamp)."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(KEY_FILE_GLOB), reverse=True)


def read_key_files(directory: Path) -> list[SecretsKey]:
    keys: list[SecretsKey] = []
    for path in key_files(directory):
        try:
            keys.append(SecretsKey.parse(path.read_text()))
        except FileNotFoundError:  # retired between listing and reading
            continue
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return keys


def write_key_file(directory: Path, key: SecretsKey | None = None) -> tuple[Path, SecretsKey]:
    """Write a new key (mode 0600, directory 0700); being the newest, it seals from now on."""
    key = key or generate_key()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = directory / f"secrets-key-{stamp}-{key.kid}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.text() + "\n")
    return path, key


# How many opened values a keyring remembers (one a subscription, connection, trunk, resource key).
_OPENED_LIMIT = 4096


class SecretsKeyring:
    """The keys of a process: configured ones (``TRUNKLINE_SECRETS_KEYS``, first seals) ahead of
    the key directory's (newest seals).

    Sealing re-reads the directory when its listing changed, so a ``trunkline secrets rotate``
    reaches running processes without a restart; opening re-reads it only for a key id it does
    not know (a value sealed by a process that saw the new key first).

    A value opened once is remembered by its sealed text and column (a webhook's secret is read
    with every delivery claimed, and opening costs more than the rest of reading the row); the
    memory is forgotten whenever the keys change, so it opens exactly what the keys open.
    """

    def __init__(self, configured: Sequence[SecretsKey] = (), directory: Path | None = None) -> None:
        self.configured = list(configured)
        self.directory = directory
        self._lock = Lock()
        self._listing: tuple[tuple[str, int], ...] | None = None
        self._keys: list[SecretsKey] = list(configured)
        self._opened: dict[tuple[str, str], str] = {}

    def _current_listing(self) -> tuple[tuple[str, int], ...]:
        if self.directory is None:
            return ()
        entries = []
        for path in key_files(self.directory):
            try:
                entries.append((path.name, path.stat().st_mtime_ns))
            except FileNotFoundError:
                continue
        return tuple(entries)

    def _reload(self, listing: tuple[tuple[str, int], ...]) -> None:
        from_files = read_key_files(self.directory) if self.directory is not None else []
        configured_ids = {k.kid for k in self.configured}
        self._keys = self.configured + [k for k in from_files if k.kid not in configured_ids]
        self._listing = listing
        self._opened = {}

    def keys(self, *, fresh: bool = True) -> list[SecretsKey]:
        """Every key, the sealing one first; ``fresh`` checks the directory for changes first."""
        with self._lock:
            if self._listing is None or fresh:
                listing = self._current_listing()
                if listing != self._listing:
                    self._reload(listing)
            return list(self._keys)

    def sealing_key(self) -> SecretsKey:
        keys = self.keys()
        if not keys:
            where = f" or put a key in {self.directory} (trunkline secrets rotate)" if self.directory else ""
            raise NoSecretsKey(f"no secrets key to encrypt with: set TRUNKLINE_SECRETS_KEYS{where}")
        return keys[0]

    def seal(self, plaintext: str, purpose: str) -> str:
        return seal(self.sealing_key(), plaintext, purpose)

    def open(self, stored: str, purpose: str) -> str:
        if not is_sealed(stored):
            return stored
        opened = self._opened  # this key set's memory (a reload swaps in an empty one)
        plain = opened.get((stored, purpose))
        if plain is not None:
            return plain
        try:
            plain = open_sealed(self.keys(fresh=False), stored, purpose)
        except UnknownSecretsKey:
            plain = open_sealed(self.keys(), stored, purpose)
        if len(opened) >= _OPENED_LIMIT:
            opened.clear()
        opened[(stored, purpose)] = plain
        return plain
