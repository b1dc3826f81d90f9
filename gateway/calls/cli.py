"""``trunkline sip``: the operator's SIP trunks and routes, offline (on the database), and the
config file that sets them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from gateway.calls.status_cli import status as sip_status
from gateway.core.cli_database import command_session
from gateway.core.cli_output import console, err_console, prepare_offline_command, print_table
from gateway.core.cli_output import fail as _fail
from gateway.core.cli_output import print_json as _print_json
from gateway.core.settings import get_settings
from sip.worker.config import DEFAULT_MEDIA_POLL_SECONDS, DEFAULT_POLL_MS, MAX_POLL_MS, MIN_POLL_MS

# `trunkline sip [--workers N] [--edge kamailio|none] [--listen HOST:PORT]` (no sub-command) runs
# the SIP process; the sub-commands manage trunks and routes offline.
sip_app = typer.Typer(
    help="The SIP process (no sub-command), and SIP trunks and routes to the operator's carriers.",
    invoke_without_command=True,
)
trunk_app = typer.Typer(help="SIP trunks: where calls go out and come in.", no_args_is_help=True)
route_app = typer.Typer(help="Routes: destination prefix -> ordered SIP trunks.", no_args_is_help=True)
sip_app.add_typer(trunk_app, name="trunk")
sip_app.add_typer(route_app, name="route")
sip_app.command("status")(sip_status)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@sip_app.callback()
def sip_process(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(help="pjsua2 worker processes (4 calls each).")] = 1,
    edge: Annotated[str, typer.Option(help="kamailio (production) | none (one worker faces the trunk)")] = (
        "kamailio"
    ),
    listen: Annotated[
        str, typer.Option(help="HOST:PORT the trunks send their INVITEs to.")
    ] = "127.0.0.1:5060",
    worker_port: Annotated[int, typer.Option(help="First worker's SIP port (behind Kamailio).")] = 15070,
    rtp_port: Annotated[int, typer.Option(help="First RTP port (40 per worker).")] = 20000,
    rpc_port: Annotated[int, typer.Option(help="Kamailio's JSON-RPC port on 127.0.0.1.")] = 15069,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
    poll_ms: Annotated[
        int,
        typer.Option(
            min=MIN_POLL_MS,
            max=MAX_POLL_MS,
            help="Each worker's pjsua2 poll when idle, ms (1 ms for a moment after traffic).",
        ),
    ] = DEFAULT_POLL_MS,
    media_poll_seconds: Annotated[
        float,
        typer.Option(min=0.5, max=3600, help="How often connected calls' RTP counters are read, s."),
    ] = DEFAULT_MEDIA_POLL_SECONDS,
    tls_port: Annotated[
        int | None,
        typer.Option(help="SIP TLS at Kamailio on this port of the --listen host (TRUNKLINE_SIP_TLS_PORT)."),
    ] = None,
) -> None:
    """Run the SIP process: the worker pool, the call controller and the command queue."""
    if ctx.invoked_subcommand is not None:
        prepare_offline_command()
        return
    from gateway.roles import SIP
    from sip.worker.config import EdgeKind

    settings = get_settings()

    try:
        edge_kind = EdgeKind(edge)
    except ValueError as exc:
        raise _fail(f"--edge must be kamailio or none, not {edge!r}", 2) from exc
    if tls_port is not None and edge_kind is not EdgeKind.KAMAILIO:
        raise _fail("--tls-port needs --edge kamailio: SIP TLS terminates at Kamailio", 2)
    if tls_port is None and settings.sip_tls_port is not None:
        if edge_kind is EdgeKind.KAMAILIO:
            tls_port = settings.sip_tls_port
        else:  # `trunkline up` without Kamailio: say so rather than fail the role over and over
            err_console.print(
                "TRUNKLINE_SIP_TLS_PORT is ignored: SIP TLS needs the Kamailio edge (apt-get install "
                "kamailio kamailio-tls-modules)",
                markup=False,
            )
    if metrics_port is not None:
        from gateway.core.metrics import serve_metrics

        serve_metrics("sip", metrics_port)
    SIP.entry_point.load()(  # sip.control.process:run_sip_process, named, not imported
        settings,
        workers=workers,
        edge=edge_kind,
        listen=listen,
        worker_sip_port=worker_port,
        rtp_port=rtp_port,
        rpc_port=rpc_port,
        poll_ms=poll_ms,
        media_poll_seconds=media_poll_seconds,
        tls_port=tls_port,
    )


@trunk_app.command("add")
def trunk_add(
    name: str,
    carrier: Annotated[str, typer.Option(help="The carrier (of kind sip or both) the trunk goes to.")],
    host: Annotated[str, typer.Option(help="The carrier's SIP host name or IP address.")],
    port: Annotated[int, typer.Option(help="The carrier's SIP port.")] = 5060,
    transport: Annotated[str, typer.Option(help="udp | tcp | tls")] = "udp",
    allow: Annotated[
        list[str] | None,
        typer.Option(
            help="A network (CIDR) whose INVITEs this trunk takes; repeat for more. Default: the host."
        ),
    ] = None,
    username: Annotated[str | None, typer.Option(help="Digest username.")] = None,
    password: Annotated[str | None, typer.Option(help="Digest password.")] = None,
    register: Annotated[bool, typer.Option("--register", help="REGISTER with the carrier.")] = False,
    codecs: Annotated[str, typer.Option(help="Codecs in preference order, comma-separated.")] = "PCMU,PCMA",
    srtp: Annotated[str, typer.Option(help="off | optional | mandatory")] = "off",
    refer: Annotated[
        bool, typer.Option("--refer", help="The carrier takes REFER: transfers are REFERs to it.")
    ] = False,
    dtmf: Annotated[
        str,
        typer.Option(
            help="auto | rfc2833 | info | inband: how the carrier sends DTMF. auto listens for "
            "in-band tones only when its SDP has no telephone-event."
        ),
    ] = "auto",
    as_json: AsJson = False,
) -> None:
    """Add a SIP trunk to a carrier."""
    from gateway.calls import service
    from gateway.calls.schemas import TrunkSpec, describe

    try:
        spec = TrunkSpec.model_validate(
            {
                "name": name,
                "carrier": carrier,
                "host": host,
                "port": port,
                "transport": transport,
                "allow": allow or [],
                "username": username,
                "password": password,
                "register": register,
                "codecs": codecs,
                "srtp": srtp,
                "refer": refer,
                "dtmf": dtmf,
            }
        )
    except ValidationError as exc:
        raise _fail(describe(exc), 2) from exc
    with command_session() as session:
        data = service.trunk_json(service.add_trunk(session, spec), spec.carrier)
    if as_json:
        _print_json(data)
        return
    console.print(f"added SIP trunk [bold]{name}[/bold] ({spec.transport}:{spec.host}:{spec.port})")


@trunk_app.command("list")
def trunk_list(as_json: AsJson = False) -> None:
    """List SIP trunks."""
    from gateway.calls import service

    with command_session() as session:
        rows = service.list_trunks(session)
    if as_json:
        _print_json(rows)
        return
    table = []
    for row in rows:
        auth = f"{row['username']}{' +register' if row['register'] else ''}" if row["username"] else "-"
        table.append(
            (
                row["name"],
                row["carrier"],
                f"{row['transport']}:{row['host']}:{row['port']}",
                ", ".join(row["allow"]) or "(host)",
                auth,
                ",".join(row["codecs"]),
                row["srtp"],
                row["dtmf"],
            )
        )
    print_table(("name", "carrier", "address", "allow", "auth", "codecs", "srtp", "dtmf"), table)


@trunk_app.command("remove")
def trunk_remove(name: str) -> None:
    """Remove a SIP trunk (and its place in every route)."""
    from gateway.calls import service

    with command_session() as session:
        service.remove_trunk(session, name)
    console.print(f"removed {name}")


@route_app.command("add")
def route_add(
    prefix: Annotated[str, typer.Option(help="Destination prefix, e.g. +1 (+ alone: every number).")],
    trunk: Annotated[list[str], typer.Option(help="A trunk; repeat for failover, in order.")],
    as_json: AsJson = False,
) -> None:
    """Route numbers starting with PREFIX to the trunks (after the prefix's earlier ones)."""
    from gateway.calls import service
    from gateway.calls.schemas import RouteSpec, describe

    try:
        spec = RouteSpec(prefix=prefix, trunks=trunk)
    except ValidationError as exc:
        raise _fail(describe(exc), 2) from exc
    with command_session() as session:
        route = service.add_route(session, spec)
    if as_json:
        _print_json(route)
        return
    console.print(f"route {route['prefix']} -> {', '.join(route['trunks'])}", highlight=False)


@route_app.command("list")
def route_list(as_json: AsJson = False) -> None:
    """List routes, each prefix with its trunks in failover order."""
    from gateway.calls import service

    with command_session() as session:
        rows = service.list_routes(session)
    if as_json:
        _print_json(rows)
        return
    print_table(
        ("prefix", "trunks (in failover order)"), [(r["prefix"], ", ".join(r["trunks"])) for r in rows]
    )


@route_app.command("remove")
def route_remove(
    prefix: Annotated[str, typer.Option(help="The route's prefix.")],
    trunk: Annotated[str | None, typer.Option(help="Remove only this trunk from the route.")] = None,
) -> None:
    """Remove a prefix's route, or one trunk from it."""
    from gateway.calls import service

    with command_session() as session:
        service.remove_route(session, prefix, trunk)
    console.print(f"removed route {prefix}{f' -> {trunk}' if trunk else ''}", highlight=False)


@sip_app.command("apply")
def apply(path: Annotated[Path, typer.Argument(help="TOML file with [[trunks]] and [[routes]].")]) -> None:
    """Create or update trunks and set routes from a file (TRUNKLINE_SIP_CONFIG_FILE's format)."""
    from gateway.calls import service

    with command_session() as session:
        applied = service.apply_config_file(session, path)
    console.print(f"{applied.trunks} trunks applied, {applied.routes} routes set")
