"""``trunkline sip status``: each SIP worker's calls and free capacity, read from the status file
that the running ``trunkline sip`` process rewrites every second (``sip.worker.status``), so it
works from any shell on the machine without talking to the process; and the registration of
each trunk that registers with its carrier, from the database (gateway.calls.registrations)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.core.cli_output import console, err_console, fail, print_json, print_table
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
        raise fail(f"no SIP status at {path}: is `trunkline sip` running?") from None
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the SIP status at {path}: {exc}") from exc
    age = max(0.0, time.time() - pool.written_at)
    stale = pool.is_stale()
    registered = _registrations()
    if as_json:
        body: dict[str, Any] = dataclasses.asdict(pool)
        body.update(calls=pool.calls, free=pool.free, age_seconds=round(age, 1), stale=stale)
        body["registrations"] = registered
        print_json(body)
    else:
        print_table(
            ("worker", "pid", "SIP port", "up", "calls", "free", "restarts"),
            (
                (
                    w.index,
                    "-" if w.pid is None else w.pid,
                    w.sip_port,
                    "yes" if w.up else "no",
                    w.calls,
                    w.free,
                    w.restarts,
                )
                for w in pool.workers
            ),
        )
        summary = (
            f"{len(pool.workers)} workers, {pool.calls} calls, {pool.free} free slots; "
            f"edge {pool.edge}, trunks send to {pool.address}; written {age:.0f} s ago"
        )
        # Below the table on a terminal; on stderr when piped, so the rows stay plain lines.
        (console if console.is_terminal else err_console).print(summary, highlight=False, markup=False)
        if registered:
            print_table(
                ("trunk", "registration", "status", "reason", "expires"),
                (
                    (r["trunk"], r["state"], r["status"] or "-", r["reason"] or "-", r["expiresAt"] or "-")
                    for r in registered
                ),
            )
    if stale:
        raise fail(f"{path} was last written {age:.0f} s ago: `trunkline sip` is not running")


def _registrations() -> list[dict[str, Any]] | None:
    """The registering trunks' last REGISTER outcomes; None (said on stderr) without a database."""
    from gateway.calls.registrations import registrations
    from gateway.core.cli_database import command_session

    try:
        with command_session() as session:
            return registrations(session)
    except Exception as exc:  # the workers' status is still worth printing
        err_console.print(f"registrations: the database cannot be read ({exc})", markup=False)
        return None
