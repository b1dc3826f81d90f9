"""Import inventory from CSV or JSON lines.

The whole file is one transaction: rows are validated and upserted in batches, and if any row is
bad the transaction is rolled back and the report names every bad line. Re-importing a number that
is already in inventory updates its attributes (keeping any hold), unless it is purchased: then it
is reported and left untouched. The writes (COPY on PostgreSQL) are in ``repository/imports.py``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import structlog

from gateway.core.db import Database, utcnow
from gateway.numbers.repository.imports import InventoryWriter, inventory_writer
from gateway.numbers.repository.inventory import carrier_ids_by_name
from gateway.numbers.rules import IMPORT_COLUMNS, REQUIRED_COLUMNS, ImportRow, validate_import_row

log = structlog.get_logger(__name__)

DEFAULT_BATCH_SIZE = 5000
MAX_REPORTED_ERRORS = 1000


@dataclass
class LineError:
    line: int
    phone_number: str
    problems: list[str]


@dataclass
class ImportReport:
    accepted: bool = False
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    purchased_untouched: list[str] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    error_count: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "purchasedUntouched": self.purchased_untouched,
            "errorCount": self.error_count,
            "errors": [
                {"line": e.line, "phoneNumber": e.phone_number, "problems": e.problems} for e in self.errors
            ],
            "seconds": round(self.seconds, 3),
            "rowsPerSecond": round(self.rows_per_second, 1),
        }


class FileFormatError(ValueError):
    """The file as a whole is unreadable (no header, wrong columns, not UTF-8)."""


def detect_format(name: str, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in ("csv", "jsonl"):
            raise FileFormatError("format must be csv or jsonl")
        return explicit
    lowered = name.lower()
    return "jsonl" if lowered.endswith((".jsonl", ".ndjson", ".json")) else "csv"


def read_records(stream: IO[str], fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield ``(line number, record)``; a record that cannot be decoded is yielded as an error string."""
    if fmt == "jsonl":
        for line_number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield line_number, f"not valid JSON: {exc.msg}"
                continue
            if not isinstance(value, dict):
                yield line_number, "each line must be a JSON object"
                continue
            yield line_number, value
        return
    reader = csv.reader(stream)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FileFormatError("the file is empty (a header line is required)") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in IMPORT_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns: {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns: {', '.join(unknown)}")
        raise FileFormatError(f"line 1 (header): {'; '.join(parts)}; expected {','.join(IMPORT_COLUMNS)}")
    for values in reader:
        row_line = reader.line_num
        if not values or (len(values) == 1 and not values[0].strip()):
            continue
        if len(values) != len(header):
            yield row_line, f"expected {len(header)} fields, found {len(values)}"
            continue
        yield row_line, dict(zip(header, values, strict=True))


def not_utf8(lines: Iterable[bytes], name: str = "The file") -> FileFormatError:
    """The error for a file that is not UTF-8, naming its first line that does not decode."""
    for number, line in enumerate(lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = line[exc.start]
            return FileFormatError(
                f"{name} is not UTF-8 text: line {number} has the byte 0x{byte:02X}, which UTF-8 does not "
                "allow there (a file saved as Latin-1 or Windows-1252?). Save it as UTF-8 and import it "
                "again; for example: iconv -f WINDOWS-1252 -t UTF-8 old.csv > new.csv"
            )
    return FileFormatError(f"{name} is not UTF-8 text.")


def decode_text(data: bytes) -> str:
    """An uploaded file's text (UTF-8, with or without BOM); FileFormatError when it is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise not_utf8(data.splitlines(keepends=True)) from None


def count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


class _Rollback(Exception):
    pass


def _count(report: ImportReport, rows: list[ImportRow], existing: Mapping[str, str]) -> set[str]:
    """Update the report's counters; return the purchased numbers to leave out."""
    skipped = set()
    for row in rows:
        status = existing.get(row.phone_number)
        if status == "purchased":
            report.purchased_untouched.append(row.phone_number)
            skipped.add(row.phone_number)
        elif status is None:
            report.inserted += 1
        else:
            report.updated += 1
    return skipped


def _write_batch(writer: InventoryWriter, rows: list[ImportRow], report: ImportReport) -> None:
    now = utcnow()
    existing = writer.existing_statuses([row.phone_number for row in rows])
    skipped = _count(report, rows, existing)
    writer.upsert(rows, now, existing, skipped)


def import_records(  # noqa: PLR0912, PLR0915 - one linear pass: validate, batch, report
    database: Database,
    records: Iterable[tuple[int, dict[str, Any] | str]],
    default_carrier: str | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate and upsert every record in one transaction; nothing is written if any row is bad."""
    report = ImportReport()
    started = time.perf_counter()
    try:
        with (
            database.session() as session,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") as writer,
        ):
            carriers = carrier_ids_by_name(session)
            if default_carrier is not None and default_carrier not in carriers:
                report.errors.append(LineError(0, "", [f"unknown carrier '{default_carrier}'"]))
                report.error_count = 1
                raise _Rollback
            seen: dict[str, int] = {}
            inventory = inventory_writer(session, carriers)

            def write(rows: list[ImportRow]) -> None:
                _write_batch(inventory, rows, report)

            # One writer thread: batch N is written while batch N+1 is validated (the database
            # driver releases the GIL while it waits). Only the writer touches the session.
            pending: list[Future[None]] = []

            def upsert(rows: list[ImportRow]) -> None:
                if pending:
                    pending.pop().result()
                pending.append(writer.submit(write, rows))

            def drain() -> None:
                while pending:
                    pending.pop().result()

            batch: list[ImportRow] = []
            for line, record in records:
                report.rows += 1
                if progress is not None and report.rows % 1000 == 0:
                    progress(1000)
                if isinstance(record, str):
                    _bad(report, line, "", [record])
                    continue
                result = validate_import_row(record, default_carrier)
                if isinstance(result, list):
                    _bad(report, line, str(record.get("phoneNumber", "")), result)
                    continue
                if result.carrier not in carriers:
                    _bad(report, line, result.phone_number, [f"unknown carrier '{result.carrier}'"])
                    continue
                first = seen.get(result.phone_number)
                if first is not None:
                    _bad(report, line, result.phone_number, [f"duplicate of line {first}"])
                    continue
                seen[result.phone_number] = line
                if report.error_count:
                    continue  # keep validating for the report, but write nothing more
                batch.append(result)
                if len(batch) >= batch_size:
                    upsert(batch)
                    batch = []
            if progress is not None:
                progress(report.rows % 1000)
            if batch and not report.error_count:
                upsert(batch)
            drain()
            if report.error_count:
                raise _Rollback
            if report.rows == 0:
                report.errors.append(LineError(0, "", ["the file has no rows"]))
                report.error_count = 1
                raise _Rollback
    except _Rollback:
        report.inserted = report.updated = 0
        report.purchased_untouched = []
        report.accepted = False
    else:
        report.accepted = True
    report.seconds = time.perf_counter() - started
    log.info(
        "inventory import",
        accepted=report.accepted,
        rows=report.rows,
        inserted=report.inserted,
        updated=report.updated,
        purchased_untouched=len(report.purchased_untouched),
        errors=report.error_count,
        rows_per_second=round(report.rows_per_second),
    )
    return report


def _bad(report: ImportReport, line: int, number: str, problems: list[str]) -> None:
    report.error_count += 1
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append(LineError(line, number, problems))


def import_file(
    database: Database,
    path: Path,
    default_carrier: str | None = None,
    *,
    fmt: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return import_records(
                database,
                read_records(stream, detect_format(path.name, fmt)),
                default_carrier,
                batch_size=batch_size,
                progress=progress,
            )
    except UnicodeDecodeError:
        with path.open("rb") as raw:
            raise not_utf8(raw, path.name) from None


def import_text(database: Database, text: str, fmt: str, default_carrier: str | None = None) -> ImportReport:
    return import_records(database, read_records(io.StringIO(text, newline=""), fmt), default_carrier)


__all__ = ["FileFormatError", "ImportReport", "LineError", "import_file", "import_text"]
