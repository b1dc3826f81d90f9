"""SQL of inventory imports: which numbers already exist, and writing a batch of rows.

Two writers, one per backend. SQLite gets a batched ``INSERT ... ON CONFLICT DO UPDATE``.
PostgreSQL gets COPY: a batch whose numbers are all new is COPYed straight into the table;
otherwise it is COPYed into a temporary table and merged with one
``INSERT ... SELECT ... ON CONFLICT DO UPDATE``. PostgreSQL imports take a transaction-scoped
advisory lock before their first existence check, so no other import inserts between the check
and the COPY (searches and purchases never insert inventory rows). Neither writer ever updates a
purchased number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from gateway.numbers.models import InventoryNumber
from gateway.numbers.rules import ImportRow

IMPORT_LOCK = 0x7472756E6B  # pg_advisory_xact_lock key: one inventory import at a time

COLUMNS = (
    "phone_number",
    "country_code",
    "phone_number_type",
    "assignment_type",
    "area_code",
    "locality",
    "administrative_division",
    "calling",
    "sms",
    "cost_amount",
    "currency_code",
    "carrier_id",
    "status",
    "free_at",
    "imported_at",
    "updated_at",
)
# What a re-import changes on a number already in inventory (a hold, if any, is kept): every
# column but the number itself, its status and hold, and when it was first imported.
UPDATABLE = tuple(c for c in COLUMNS if c not in {"phone_number", "status", "free_at", "imported_at"})


def row_values(row: ImportRow, carrier_ids: Mapping[str, str], now: datetime) -> tuple[Any, ...]:
    """The row's values in ``COLUMNS`` order: a new number is available from ``now``."""
    return (
        row.phone_number,
        row.country_code,
        row.phone_number_type,
        row.assignment_type,
        row.area_code,
        row.locality,
        row.administrative_division,
        row.calling,
        row.sms,
        row.cost_amount,
        row.currency_code,
        carrier_ids[row.carrier],
        "available",
        now,
        now,
        now,
    )


class InventoryWriter(Protocol):
    """Writes one import's batches, in the import's transaction."""

    def existing_statuses(self, phone_numbers: list[str]) -> dict[str, str]:
        """The status of each of ``phone_numbers`` already in inventory."""
        ...

    def upsert(
        self, rows: list[ImportRow], now: datetime, existing: Mapping[str, str], skipped: set[str]
    ) -> None:
        """Insert the new numbers of ``rows`` and update the others, except purchased ones;
        ``existing`` is what ``existing_statuses`` returned for them, ``skipped`` the numbers
        to leave out."""
        ...


def inventory_writer(session: Session, carrier_ids: Mapping[str, str]) -> InventoryWriter:
    if session.get_bind().dialect.name == "postgresql":
        return PostgresInventoryWriter(session, carrier_ids)
    return SqliteInventoryWriter(session, carrier_ids)


class SqliteInventoryWriter:
    """Batched ``INSERT ... ON CONFLICT DO UPDATE``."""

    def __init__(self, session: Session, carrier_ids: Mapping[str, str]) -> None:
        self.session = session
        self.carrier_ids = carrier_ids

    def existing_statuses(self, phone_numbers: list[str]) -> dict[str, str]:
        return dict(
            self.session.execute(
                select(InventoryNumber.phone_number, InventoryNumber.status).where(
                    InventoryNumber.phone_number.in_(phone_numbers)
                )
            ).all()
        )

    def upsert(
        self, rows: list[ImportRow], now: datetime, existing: Mapping[str, str], skipped: set[str]
    ) -> None:
        values = [
            dict(zip(COLUMNS, row_values(row, self.carrier_ids, now), strict=True))
            for row in rows
            if row.phone_number not in skipped
        ]
        if not values:
            return
        stmt = sqlite.insert(InventoryNumber.__table__)  # type: ignore[arg-type]
        stmt = stmt.on_conflict_do_update(
            index_elements=["phone_number"],
            set_={name: stmt.excluded[name] for name in UPDATABLE},
            where=InventoryNumber.__table__.c.status != "purchased",
        )
        self.session.execute(stmt, values)


class PostgresInventoryWriter:
    """COPY, straight into the table or through a temporary table (see the module docstring)."""

    def __init__(self, session: Session, carrier_ids: Mapping[str, str]) -> None:
        self.session = session
        self.carrier_ids = carrier_ids
        self.locked = False  # the advisory lock is held (until the transaction ends)
        self.staged = False  # the temporary table exists (it is dropped on commit)

    def _cursor(self) -> Any:
        raw = self.session.connection().connection.dbapi_connection
        assert raw is not None
        return raw.cursor()

    def existing_statuses(self, phone_numbers: list[str]) -> dict[str, str]:
        if not self.locked:
            self.session.connection().exec_driver_sql(f"SELECT pg_advisory_xact_lock({IMPORT_LOCK})")
            self.locked = True
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT phone_number, status FROM inventory_numbers WHERE phone_number = ANY(%s)",
                (phone_numbers,),
            )
            return dict(cursor.fetchall())

    def upsert(
        self, rows: list[ImportRow], now: datetime, existing: Mapping[str, str], skipped: set[str]
    ) -> None:
        # Purchased numbers need no leaving out here: the merge's WHERE keeps them untouched, and
        # a batch with any existing number (purchased or not) is merged.
        with self._cursor() as cursor:
            if not existing:
                with cursor.copy(f"COPY inventory_numbers ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row_values(row, self.carrier_ids, now))
                return
            if not self.staged:
                cursor.execute(
                    "CREATE TEMPORARY TABLE inventory_import "
                    "(LIKE inventory_numbers INCLUDING DEFAULTS) ON COMMIT DROP"
                )
                self.staged = True
            else:
                cursor.execute("TRUNCATE inventory_import")
            with cursor.copy(f"COPY inventory_import ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row_values(row, self.carrier_ids, now))
        assignments = ", ".join(f"{name} = EXCLUDED.{name}" for name in UPDATABLE)
        self.session.connection().exec_driver_sql(
            f"INSERT INTO inventory_numbers ({', '.join(COLUMNS)}) "  # noqa: S608 - fixed column names
            f"SELECT {', '.join(COLUMNS)} FROM inventory_import "
            f"ON CONFLICT (phone_number) DO UPDATE SET {assignments} "
            "WHERE inventory_numbers.status <> 'purchased'"
        )
