"""``trunkline status``: the whole gateway on one screen (gateway.status gathers it), once or
refreshed every few seconds with ``--watch``; ``--json`` prints the same data for scripts."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gateway.core.cli_output import print_json
from gateway.core.db import utcnow
from gateway.core.settings import get_settings

DEFAULT_WATCH_SECONDS = 2.0


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> Table:
    table = Table(*columns, title=title, title_justify="left")
    for row in rows:
        table.add_row(*(Text("-" if value is None else str(value)) for value in row))
    return table


def render(data: dict[str, Any]) -> RenderableType:
    """The status as rich tables, one per part (no markup read from the data)."""
    queue = data["smsQueue"]
    webhooks = data["webhooks"]
    rates = data["messagesPerMinute"]
    warnings = []
    if data["database"]["autovacuum"] is False:
        warnings.append(
            Text(
                "PostgreSQL's autovacuum is off: the tables are never analysed nor vacuumed, and"
                " the cost per message grows with the history (docs/sms.md, Operator: statistics)",
                style="bold red",
            )
        )
    return Group(
        Text(f"Trunkline status at {data['generatedAt']}", style="bold"),
        *warnings,
        _table(
            "Processes",
            ("role", "state", "detail"),
            [(p["role"], p["state"], p["detail"]) for p in data["processes"]],
        ),
        _table(
            "SMPP binds",
            ("connection", "state", "since", "last error", "window", "sent/min"),
            [
                (
                    b["connection"],
                    b["state"],
                    b["since"],
                    b["lastError"],
                    b["windowInUse"],
                    b["sentLastMinute"],
                )
                for b in data["binds"]
            ],
        ),
        _table(
            "Queues",
            ("queue", "depth", "oldest (s)"),
            [
                ("SMS queued", queue["queued"], queue["oldestQueuedAgeSeconds"]),
                ("events not fanned out", webhooks["outbox"], None),
                ("webhook deliveries pending", webhooks["pending"], None),
                ("webhook deliveries dead-lettered", webhooks["deadLettered"], None),
            ],
        ),
        _table(
            "Messages per minute (last 5 min)",
            ("state", "per minute"),
            [(state, rate) for state, rate in rates.items()] or [("(none)", 0)],
        ),
        _table(
            "SIP workers",
            ("worker", "pid", "up", "calls", "free"),
            [
                (w["worker"], w["pid"], "yes" if w["up"] else "no", w["calls"], w["free"])
                for w in data["sipWorkers"]
            ],
        ),
    )


def collect() -> dict[str, Any]:
    """One reading of the gateway this shell points at."""
    from gateway.core.cli_database import command_session
    from gateway.status import gather_status

    with command_session() as session:
        return gather_status(session, get_settings(), utcnow())


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until Ctrl-C.")] = False,
    seconds: Annotated[
        float | None,
        typer.Argument(
            metavar="SECONDS",
            help=f"With --watch: refresh every SECONDS (default {DEFAULT_WATCH_SECONDS:g}).",
            min=0.5,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Show every process, SMPP bind, queue, message rate, webhook backlog and SIP worker."""
    from gateway.core.cli_output import console, fail

    if seconds is not None and not watch:
        raise fail("SECONDS is how often --watch refreshes: give it as `trunkline status --watch SECONDS`")
    if as_json and watch:
        raise fail("--json prints one reading; leave out --watch (or run it in a loop)")
    if as_json:
        print_json(collect())
        return
    if not watch:
        console.print(render(collect()))
        return
    interval = seconds if seconds is not None else DEFAULT_WATCH_SECONDS
    try:
        with Live(render(collect()), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(render(collect()), refresh=True)
    except KeyboardInterrupt:
        pass
