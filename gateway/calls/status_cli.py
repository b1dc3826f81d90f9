"""``trunkline sip status``: each SIP worker's calls and free capacity, read from the status file
that the running ``trunkline sip`` process rewrites every second (``sip.worker.status``), so it
works from any shell on the machine without talking to the process."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from gateway.core.settings import get_settings


def status(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="The status file (default: sip-status.json in the data directory)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each SIP worker's calls and free call slots (exit 1 when `trunkline sip` is not running)."""
    from sip.worker.status import read

    path = file or get_settings().sip_status_file
    try:
        pool = read(path)
    except FileNotFoundError:
        _fail(f"no SIP status at {path}: is `trunkline sip` running?")
    except (OSError, ValueError) as exc:
        _fail(f"cannot read the SIP status at {path}: {exc}")
    age = max(0.0, time.time() - pool.written_at)
    stale = pool.is_stale()
    if as_json:
        body: dict[str, Any] = dataclasses.asdict(pool)
        body.update(calls=pool.calls, free=pool.free, age_seconds=round(age, 1), stale=stale)
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        table = Table()
        for column in ("worker", "pid", "SIP port", "up", "calls", "free", "restarts"):
            table.add_column(column, justify="left" if column == "up" else "right")
        for worker in pool.workers:
            table.add_row(
                str(worker.index),
                "-" if worker.pid is None else str(worker.pid),
                str(worker.sip_port),
                "yes" if worker.up else "[red]no[/red]",
                str(worker.calls),
                str(worker.free),
                str(worker.restarts),
            )
        console = Console()
        console.print(table)
        console.print(
            f"{len(pool.workers)} workers, {pool.calls} calls, {pool.free} free slots; "
            f"edge {pool.edge}, trunks send to {pool.address}; written {age:.0f} s ago",
            highlight=False,
        )
    if stale:
        Console(stderr=True).print(
            f"[red]stale:[/red] {path} was last written {age:.0f} s ago; `trunkline sip` is not running"
        )
        raise typer.Exit(1)


def _fail(message: str) -> NoReturn:
    console = Console(stderr=True)
    console.print("[red]error:[/red] ", end="")
    console.print(message, markup=False, highlight=False)
    raise typer.Exit(1)
