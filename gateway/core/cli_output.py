"""What the ``trunkline`` commands print: JSON, tables, errors; one way for every command.

Tables are drawn with rich on a terminal (long values wrap, none is cut) and written as plain
tab-separated lines with a header when stdout is a pipe or a file, so ``| head``, ``| cut -f1``
and ``| sort`` see every value whole.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (dates and other objects as strings)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _plain(value: str) -> str:
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, out: Console | None = None) -> None:
    """A table of ``rows`` under ``columns``: rich on a terminal, tab-separated otherwise."""
    out = out or console
    cells = [[_cell(value) for value in row] for row in rows]
    if out.is_terminal:
        table = Table(*columns)
        for column in table.columns:
            column.overflow = "fold"
        for row in cells:
            table.add_row(*row)
        out.print(table)
        return
    out.file.write("\t".join(columns) + "\n")
    for row in cells:
        out.file.write("\t".join(_plain(value) for value in row) + "\n")
    out.file.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr (no markup read in the message); the Exit to raise."""
    err_console.print("[red]error:[/red] ", end="")
    err_console.print(message, markup=False, highlight=False)
    return typer.Exit(code)


def note(message: str) -> None:
    """A line about what the command does (which data dir, which endpoint), on stderr."""
    err_console.print("[dim]note:[/dim] ", end="")
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def prepare_offline_command() -> None:
    """Before a command that is not a long-running role: warnings-only logs, the running local
    gateway's data dir and endpoint where the environment names none (and a note saying so)."""
    import structlog

    from gateway.core.local_state import use_local_gateway
    from gateway.core.logging import configure_logging, quiet_for_commands

    if not structlog.is_configured():  # main() configures; an embedding caller may not have
        configure_logging(os.environ.get("TRUNKLINE_LOG_LEVEL", "WARNING"))
    quiet_for_commands()
    message = use_local_gateway()
    if message:
        note(message)
