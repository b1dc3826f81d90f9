"""``trunkline smpp``: run the SMPP process, and manage SMPP connections and routes offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from gateway.core.cli_database import command_session
from gateway.core.cli_output import console, prepare_offline_command, print_table
from gateway.core.cli_output import fail as _fail
from gateway.core.cli_output import print_json as _print_json
from gateway.core.input_errors import describe
from gateway.core.settings import get_settings

smpp_app = typer.Typer(
    help="The SMPP process (no sub-command: run it), SMPP connections and routes.",
    invoke_without_command=True,
)
route_app = typer.Typer(help="Routes: destination prefix -> ordered SMPP connections.", no_args_is_help=True)
smpp_app.add_typer(route_app, name="route")

# The connection settings whose command-line option is not their name.
OPTION_LABELS = {
    "window_size": "window (--window)",
    "max_submits_per_second": "rate (--max-rate)",
    "default_data_coding": "data coding (--data-coding)",
    "system_id": "system id (--system-id)",
}


@smpp_app.callback()
def smpp(
    ctx: typer.Context,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
) -> None:
    """Without a sub-command: run one persistent bind per configured SMPP connection."""
    if ctx.invoked_subcommand is not None:
        prepare_offline_command()
        return
    from gateway.roles import SMPP

    if metrics_port is not None:
        from gateway.core.metrics import serve_metrics

        serve_metrics(SMPP.name, metrics_port)
    SMPP.entry_point.load()(get_settings())  # sms.worker.main:run_smpp, named, not imported


@smpp_app.command("add")
def add(
    name: str,
    host: Annotated[str, typer.Option(help="SMSC host.")],
    port: Annotated[int, typer.Option(help="SMSC port.")],
    system_id: Annotated[str, typer.Option("--system-id", help="SMPP system_id.")],
    password: Annotated[str, typer.Option(help="SMPP password.")],
    tls: Annotated[bool, typer.Option("--tls", help="Connect over TLS.")] = False,
    system_type: Annotated[str, typer.Option("--system-type")] = "",
    bind_mode: Annotated[str, typer.Option("--bind-mode", help="transceiver | transmitter+receiver")] = (
        "transceiver"
    ),
    source_ton: Annotated[int, typer.Option("--source-ton")] = 1,
    source_npi: Annotated[int, typer.Option("--source-npi")] = 1,
    dest_ton: Annotated[int, typer.Option("--dest-ton")] = 1,
    dest_npi: Annotated[int, typer.Option("--dest-npi")] = 1,
    window: Annotated[int, typer.Option("--window", help="Outstanding submits.")] = 10,
    max_rate: Annotated[float, typer.Option("--max-rate", help="Submits per second (0: unlimited).")] = 0.0,
    enquire_link_interval: Annotated[float, typer.Option("--enquire-link-interval")] = 30.0,
    reconnect_backoff_initial: Annotated[float, typer.Option("--reconnect-backoff-initial")] = 1.0,
    reconnect_backoff_max: Annotated[float, typer.Option("--reconnect-backoff-max")] = 10.0,
    data_coding: Annotated[str, typer.Option("--data-coding", help="auto | gsm7 | ucs2")] = "auto",
    resp_id_format: Annotated[
        str, typer.Option("--resp-id-format", help="Message ids in submit_sm_resp: as-is | hex | decimal")
    ] = "as-is",
    receipt_id_format: Annotated[
        str, typer.Option("--receipt-id-format", help="Message ids in receipts: as-is | hex | decimal")
    ] = "as-is",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Add an SMPP connection (the running SMPP process binds it within seconds)."""
    from gateway.sms import connections
    from gateway.sms.schemas import ConnectionCreate

    try:
        spec = ConnectionCreate(
            name=name,
            host=host,
            port=port,
            tls=tls,
            system_id=system_id,
            password=password,
            system_type=system_type,
            bind_mode=bind_mode,
            source_ton=source_ton,
            source_npi=source_npi,
            dest_ton=dest_ton,
            dest_npi=dest_npi,
            window_size=window,
            max_submits_per_second=max_rate,
            enquire_link_interval=enquire_link_interval,
            reconnect_backoff_initial=reconnect_backoff_initial,
            reconnect_backoff_max=reconnect_backoff_max,
            default_data_coding=data_coding,
            resp_id_format=resp_id_format,
            receipt_id_format=receipt_id_format,
        )
    except ValidationError as exc:
        raise _fail(describe(exc, OPTION_LABELS), 2) from exc
    with command_session() as session:
        data = connections.connection_json(connections.add_connection(session, spec))
    if as_json:
        _print_json(data)
        return
    console.print(f"added SMPP connection [bold]{name}[/bold] ({host}:{port})")


@smpp_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List SMPP connections and the state of their binds (as the SMPP process publishes it)."""
    from gateway.core.db import utcnow
    from gateway.sms.bind_status import connections_with_status

    with command_session() as session:
        rows = connections_with_status(session, utcnow())
    if as_json:
        _print_json(rows)
        return
    print_table(
        (
            "name",
            "host",
            "port",
            "system_id",
            "bind mode",
            "window",
            "max rate",
            "state",
            "since",
            "last error",
            "window in use",
            "sent last min",
        ),
        [
            (
                row["name"],
                row["host"],
                row["port"],
                row["systemId"],
                row["bindMode"],
                row["windowSize"],
                row["maxSubmitsPerSecond"],
                row["state"],
                row["stateSince"],
                row["lastError"],
                row["windowInUse"],
                row["sentLastMinute"],
            )
            for row in rows
        ],
    )


@smpp_app.command("remove")
def remove(name: str) -> None:
    """Remove an SMPP connection and its routes."""
    from gateway.sms import connections

    with command_session() as session:
        connections.delete_connection(session, name)
    console.print(f"removed {name}")


@smpp_app.command("apply")
def apply(
    path: Annotated[Path, typer.Argument(help="TOML file with [[connections]] and [[routes]].")],
) -> None:
    """Create or update connections and add routes from a file (TRUNKLINE_SMPP_CONFIG_FILE's format)."""
    from gateway.sms.connections import apply_config_file

    with command_session() as session:
        connections, routes = apply_config_file(session, path)
    console.print(f"{connections} connections applied, {routes} routes added")


@smpp_app.command("stats")
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (stats always does).")] = False,
) -> None:
    """Messages by state and possible duplicates, as JSON."""
    from gateway.sms import reports

    with command_session() as session:
        _print_json(reports.stats(session))


@route_app.command("add")
def route_add(
    prefix: Annotated[str, typer.Option(help="Destination prefix, e.g. +1 (+ alone: everything).")],
    connection: Annotated[str, typer.Option(help="Connection name; add several for failover, in order.")],
    priority: Annotated[int | None, typer.Option(help="Order among the prefix's connections.")] = None,
) -> None:
    """Route destinations starting with PREFIX to CONNECTION (after the prefix's earlier ones)."""
    from gateway.sms import connections
    from gateway.sms.schemas import RouteCreate

    try:
        spec = RouteCreate(prefix=prefix, connection=connection, priority=priority)
    except ValidationError as exc:
        raise _fail(describe(exc), 2) from exc
    with command_session() as session:
        route = connections.add_route(session, spec)
        console.print(f"route {route.prefix} -> {connection} (priority {route.priority})")


@route_app.command("list")
def route_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List routes."""
    from gateway.sms import connections

    with command_session() as session:
        rows = connections.list_routes(session)
    if as_json:
        _print_json(rows)
        return
    print_table(
        ("prefix", "connection", "priority"), [(r["prefix"], r["connection"], r["priority"]) for r in rows]
    )


sms_app = typer.Typer(help="Outgoing messages: look one up, search them.", no_args_is_help=True)


@sms_app.callback()
def sms() -> None:
    prepare_offline_command()


@sms_app.command("list")
def sms_list(
    to: Annotated[str | None, typer.Option("--to", help="Recipient (E.164, e.g. +14255550123).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Sender number.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="queued | submitted | delivered | failed | expired")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="30m, 2h, 1d or an ISO 8601 time.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Outgoing messages, newest first, filtered by recipient, sender, status and age."""
    from gateway.core.db import utcnow
    from gateway.core.errors import AcsError
    from gateway.sms import history

    try:
        moment = history.parse_since(since, utcnow()) if since else None
    except AcsError as exc:
        raise _fail(exc.message, 2) from exc
    with command_session(error_code=2) as session:
        rows = history.list_messages(
            session, to_number=to, from_number=from_, status=status, since=moment, limit=limit
        )
    if as_json:
        _print_json(rows)
        return
    print_table(
        ("id", "created", "from", "to", "status", "delivery status", "parts", "attempts"),
        [
            (
                row["id"],
                row["createdAt"],
                row["from"],
                row["to"],
                row["status"],
                row["deliveryStatus"],
                row["segmentCount"],
                row["attempts"],
            )
            for row in rows
        ],
    )


def _step_detail(step: dict[str, Any]) -> str:
    keys = [k for k in step if k not in ("at", "step") and step[k] is not None]
    return ", ".join(f"{key} {step[key]}" for key in keys)


@sms_app.command("show")
def sms_show(
    message_id: Annotated[str, typer.Argument(help="The message id (Outgoing_...).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One message's whole history: accepted, each part submitted, receipts, events, deliveries."""
    from gateway.sms import history

    with command_session() as session:
        data = history.message_history(session, message_id)
    if as_json:
        _print_json(data)
        return
    for label, key in (
        ("id", "id"),
        ("from", "from"),
        ("to", "to"),
        ("status", "status"),
        ("delivery status", "deliveryStatus"),
        ("details", "deliveryStatusDetails"),
        ("parts", "segmentCount"),
        ("attempts", "attempts"),
        ("connection", "connection"),
    ):
        if data[key] is not None:
            console.print(f"{label}: {data[key]}", markup=False, highlight=False)
    print_table(("at", "step", "detail"), [(s["at"], s["step"], _step_detail(s)) for s in data["history"]])
