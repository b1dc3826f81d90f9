"""Columns whose values the database keeps encrypted (``SealedText``), and the process's keys.

A model declares a secret column as ``mapped_column(SealedText("table.column"))``: the value is
sealed (gateway/core/secrets.py) on its way into the database and opened on its way out, so
the ORM and Core queries see plain text and a dump of the tables sees none. A plain value
stored before encryption reads as it is until ``trunkline secrets encrypt`` seals it.

The keys are the process's: those ``use_keyring`` installed (the API app does, from its
settings), else those of ``get_settings()``.
"""

from __future__ import annotations

from threading import Lock
from typing import Any

from sqlalchemy import Dialect, String, Text
from sqlalchemy.types import TypeDecorator, TypeEngine

from gateway.core.secrets import SecretsKeyring, parse_keys
from gateway.core.settings import Settings, get_settings


class _ProcessKeys:
    """The process's keyring: installed, or made from get_settings() (again when they change)."""

    def __init__(self) -> None:
        self.lock = Lock()
        self.installed: SecretsKeyring | None = None
        # The settings' fields the keyring was made from, and the keyring.
        self.from_settings: tuple[tuple[Any, ...], SecretsKeyring] | None = None


_process = _ProcessKeys()


def keyring_of(settings: Settings) -> SecretsKeyring:
    """The keys ``settings`` configure: TRUNKLINE_SECRETS_KEYS, then the key directory's."""
    try:
        configured = parse_keys(settings.secrets_keys.get_secret_value()) if settings.secrets_keys else []
    except ValueError as exc:  # never quotes the value
        raise ValueError(f"TRUNKLINE_SECRETS_KEYS: {exc}") from None
    return SecretsKeyring(configured, settings.effective_secrets_keys_dir)


def use_keyring(keyring: SecretsKeyring | None) -> SecretsKeyring | None:
    """Make ``keyring`` the process's (None: back to get_settings()'s); returns the one before."""
    with _process.lock:
        previous, _process.installed = _process.installed, keyring
    return previous


def process_keyring() -> SecretsKeyring:
    """The keys this process seals and opens stored secrets with."""
    installed = _process.installed
    if installed is not None:
        return installed
    settings = get_settings()
    # The fields keyring_of reads (compared as they are: this runs for every value opened).
    identity = (settings.secrets_keys, settings.secrets_keys_dir, settings.data_dir)
    current = _process.from_settings
    if current is not None and current[0] == identity:
        return current[1]
    with _process.lock:
        if _process.from_settings is None or _process.from_settings[0] != identity:
            _process.from_settings = (identity, keyring_of(settings))
        return _process.from_settings[1]


def reveal(stored: str, purpose: str) -> str:
    """The plain text of a value read raw from a ``SealedText`` column (sealed or not)."""
    return process_keyring().open(stored, purpose)


class SealedText(TypeDecorator[str]):
    """Text sealed with the process's newest key for the column named ``purpose``
    (``"table.column"``: a value copied into another column does not open).

    Each sealing draws a fresh nonce, so a sealed column cannot be compared in SQL (``WHERE
    secret = :x`` never matches); read it and compare in Python. On SQLite the column keeps the
    declared VARCHAR it had (SQLite ignores lengths, and changing a declared type rebuilds the
    table, whose DROP cascades to every row that references it); elsewhere it is TEXT.
    """

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return String()
        return Text()

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return process_keyring().seal(value, self.purpose)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return process_keyring().open(value, self.purpose)
