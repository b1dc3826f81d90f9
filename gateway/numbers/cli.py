"""``trunkline numbers ...`` and ``trunkline carriers ...``: inventory and carriers, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gateway.core.cli_database import command_session, migrated_database
from gateway.core.cli_output import console, err_console, print_table
from gateway.core.cli_output import print_json as _print_json
from gateway.numbers.rules import IMPORT_COLUMNS, column_guide

numbers_app = typer.Typer(help="Number inventory (operator side).", no_args_is_help=True)
carriers_app = typer.Typer(help="Carriers the inventory comes from.", no_args_is_help=True)

# `numbers import --help`: the columns and the values each takes (docs/numbers.md has the same).
IMPORT_EPILOG = (
    "CSV header (JSON lines use the same keys): "
    + ",".join(IMPORT_COLUMNS)
    + "\n\n"
    + "\n\n".join(column_guide().splitlines())
    + "\n\nThe file must be UTF-8."
)


@numbers_app.command("import", epilog=IMPORT_EPILOG)
def numbers_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    carrier: Annotated[
        str | None, typer.Option(help="Carrier for rows whose carrier column is empty or missing.")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv or jsonl (default: by extension).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=20000, help="Rows per INSERT batch.")] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Import (or re-import) inventory from a CSV or JSON-lines file, all or nothing."""
    from gateway.numbers.importer import FileFormatError, count_lines, detect_format, import_file

    database = migrated_database()
    try:
        header_lines = 0 if detect_format(file.name, fmt) == "jsonl" else 1
    except FileFormatError as exc:
        err_console.print(f"[red]rejected:[/red] {exc}")
        raise typer.Exit(2) from exc
    total = max(count_lines(file) - header_lines, 0)
    try:
        with Progress(
            TextColumn("[bold]importing[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=as_json or not err_console.is_terminal,
        ) as progress:
            task = progress.add_task(file.name, total=total)
            report = import_file(
                database,
                file,
                carrier,
                fmt=fmt,
                batch_size=batch_size,
                progress=lambda n: progress.advance(task, n),
            )
    except FileFormatError as exc:
        err_console.print(f"[red]rejected:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        database.dispose()
    if as_json:
        _print_json(report.as_json())
    elif report.accepted:
        console.print(
            f"imported {report.rows} rows: {report.inserted} new, {report.updated} updated, "
            f"{len(report.purchased_untouched)} purchased (left untouched) "
            f"in {report.seconds:.1f}s ({report.rows_per_second:,.0f} rows/s)"
        )
        for number in report.purchased_untouched[:50]:
            console.print(f"  purchased, not updated: {number}")
    else:
        err_console.print(f"[red]rejected:[/red] {report.error_count} bad rows; nothing was imported")
        for error in report.errors:
            where = f"line {error.line}" if error.line else "file"
            err_console.print(f"  {where} {error.phone_number}: {'; '.join(error.problems)}")
    if not report.accepted:
        raise typer.Exit(1)


@numbers_app.command("list")
def numbers_list(
    status: Annotated[str | None, typer.Option(help="available, reserved, purchased or quarantined.")] = None,
    country: Annotated[str | None, typer.Option(help="ISO country code.")] = None,
    carrier: Annotated[str | None, typer.Option(help="Carrier name.")] = None,
    skip: Annotated[int, typer.Option(min=0)] = 0,
    top: Annotated[int, typer.Option(min=1, max=100000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List inventory numbers with their state."""
    from gateway.core.db import utcnow
    from gateway.numbers.inventory import inventory_json, list_numbers

    now = utcnow()
    with command_session(error_code=2) as session:
        rows, total = list_numbers(
            session, now, status=status, country_code=country, carrier=carrier, skip=skip, top=top
        )
        data = [inventory_json(number, name, now) for number, name in rows]
    if as_json:
        _print_json({"total": total, "numbers": data})
        return
    print_table(
        ("number", "country", "type", "area", "locality", "calling", "sms", "cost", "carrier", "status"),
        [
            (
                row["phoneNumber"],
                row["countryCode"],
                row["phoneNumberType"],
                row["areaCode"],
                row["locality"],
                row["calling"],
                row["sms"],
                f"{row['costAmount']} {row['currencyCode']}",
                row["carrier"],
                row["status"],
            )
            for row in data
        ],
    )
    err_console.print(f"{len(data)} of {total} shown")


@carriers_app.command("add")
def carriers_add(
    name: str,
    kind: Annotated[str, typer.Option(help="sip, smpp or both.")] = "both",
    notes: Annotated[str, typer.Option(help="Free text.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add a carrier."""
    from gateway.numbers.inventory import carrier_json, create_carrier

    with command_session() as session:
        data = carrier_json(create_carrier(session, name, kind, notes))
    if as_json:
        _print_json(data)
    else:
        console.print(f"added carrier [bold]{data['name']}[/bold] ({data['kind']})")


@carriers_app.command("list")
def carriers_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List carriers and how many inventory numbers each has."""
    from gateway.numbers.inventory import carrier_json, list_carriers

    with command_session() as session:
        data = [carrier_json(c, n) for c, n in list_carriers(session)]
    if as_json:
        _print_json(data)
        return
    print_table(
        ("name", "kind", "numbers", "notes"), [(r["name"], r["kind"], r["numbers"], r["notes"]) for r in data]
    )


@carriers_app.command("delete")
def carriers_delete(name: str) -> None:
    """Delete a carrier that has no inventory numbers."""
    from gateway.numbers.inventory import delete_carrier

    with command_session() as session:
        delete_carrier(session, name)
    console.print(f"deleted carrier {name}")
