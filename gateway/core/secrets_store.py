"""Every stored secret, whatever its domain: which key each is sealed with, and sealing them again.

The sealed columns are found on the metadata (columns of type ``SealedText``), so a domain that
adds one is covered by ``trunkline secrets`` without a change here. Values are read and written
raw (sealed here with the keyring's newest key); a row changed by someone else meanwhile is left
alone (the write matches the raw value it read).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

from sqlalchemy import Column, MetaData, Table, Text, and_, literal, select, type_coerce, update

from gateway.core.db import Database
from gateway.core.sealed_columns import SealedText
from gateway.core.secrets import SecretsKeyring, open_sealed, seal, sealed_key_id

PLAIN = "plain"  # the census's name for values not sealed yet
BATCH_ROWS = 500


class SealedColumn(NamedTuple):
    table: Table
    column: Column[Any]
    purpose: str


class ResealReport(NamedTuple):
    """What ``reseal`` did: values sealed with the newest key, already so, changed meanwhile."""

    resealed: int
    current: int
    skipped: int


def sealed_columns(metadata: MetaData) -> list[SealedColumn]:
    found = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, SealedText):
                found.append(SealedColumn(table, column, column.type.purpose))
    return found


def _raw(column: Column[Any]) -> Any:
    return type_coerce(column, Text)


def _rows(database: Database, table: Table, columns: list[SealedColumn]) -> Iterator[Any]:
    keys = list(table.primary_key.columns)
    query = select(*keys, *(_raw(c.column).label(c.column.name) for c in columns)).order_by(*keys)
    with database.read_session() as session:
        rows = session.execute(query).all()
    yield from rows


def _by_table(metadata: MetaData) -> dict[Table, list[SealedColumn]]:
    grouped: dict[Table, list[SealedColumn]] = {}
    for column in sealed_columns(metadata):
        grouped.setdefault(column.table, []).append(column)
    return grouped


def census(database: Database, metadata: MetaData) -> Counter[str]:
    """How many stored values each key id sealed (``PLAIN``: not sealed)."""
    counts: Counter[str] = Counter()
    for table, columns in _by_table(metadata).items():
        for row in _rows(database, table, columns):
            for column in columns:
                value = getattr(row, column.column.name)
                if value is not None:
                    counts[sealed_key_id(value) or PLAIN] += 1
    return counts


def reseal(
    database: Database, metadata: MetaData, keyring: SecretsKeyring, *, plain_only: bool = False
) -> ResealReport:
    """Seal every stored value with the keyring's newest key (``plain_only``: only plain values)."""
    newest = keyring.sealing_key()
    keys = keyring.keys()
    resealed = current = skipped = 0
    for table, columns in _by_table(metadata).items():
        pending: list[tuple[Any, SealedColumn, str, str]] = []
        for row in _rows(database, table, columns):
            for column in columns:
                value = getattr(row, column.column.name)
                if value is None:
                    continue
                kid = sealed_key_id(value)
                if kid == newest.kid or (plain_only and kid is not None):
                    current += 1
                    continue
                pending.append((row, column, value, open_sealed(keys, value, column.purpose)))
        for start in range(0, len(pending), BATCH_ROWS):
            with database.session() as session:
                for row, column, stored, plain in pending[start : start + BATCH_ROWS]:
                    match = and_(
                        *(key == getattr(row, key.name) for key in table.primary_key.columns),
                        _raw(column.column) == stored,
                    )
                    sealed = literal(seal(newest, plain, column.purpose), Text)
                    changed = session.execute(update(table).where(match).values({column.column.name: sealed}))
                    if changed.rowcount == 1:  # type: ignore[attr-defined]
                        resealed += 1
                    else:
                        skipped += 1
    return ResealReport(resealed, current, skipped)
