"""``trunkline sip``: the operator's SIP trunks and routes, offline (on the database), and the
config file that sets them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from gateway.core.settings import get_settings

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

console = Console()
err_console = Console(stderr=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _database() -> Any:
    from gateway.core.db import Database
    from gateway.core.migrate import upgrade

    database = Database(get_settings().effective_database_url)
    upgrade(database.engine)
    return database


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print("[red]error:[/red] ", end="")
    err_console.print(message, markup=False, highlight=False)
    return typer.Exit(code)


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
) -> None:
    """Run the SIP process: the worker pool, the call controller and the command queue."""
    if ctx.invoked_subcommand is not None:
        return
    from gateway.calls.sip_process import run_sip_process
    from sip.worker.main import EdgeKind

    settings = get_settings()

    try:
        edge_kind = EdgeKind(edge)
    except ValueError as exc:
        raise _fail(f"--edge must be kamailio or none, not {edge!r}", 2) from exc
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="0.0.0.0")  # noqa: S104 - scraped from outside
    run_sip_process(
        settings,
        workers=workers,
        edge=edge_kind,
        listen=listen,
        worker_sip_port=worker_port,
        rtp_port=rtp_port,
        rpc_port=rpc_port,
    )


@sip_app.command("status")
def status(as_json: AsJson = False) -> None:
    """The running SIP process's workers: calls and free slots (from its status file)."""
    import dataclasses

    from gateway.calls.sip_process import status_path
    from sip.worker.status import read

    path = status_path(get_settings())
    try:
        pool = read(path)
    except (OSError, ValueError) as exc:
        raise _fail(f"no SIP process status at {path}: {exc}") from exc
    if as_json:
        _print_json({**dataclasses.asdict(pool), "stale": pool.is_stale()})
        return
    stale = " [red](stale: the process is gone)[/red]" if pool.is_stale() else ""
    console.print(
        f"edge {pool.edge}, trunks send to {pool.address}: {pool.calls} calls, {pool.free} free{stale}"
    )
    table = Table("worker", "pid", "sip port", "up", "calls", "free", "restarts")
    for w in pool.workers:
        table.add_row(*(str(v) for v in (w.index, w.pid, w.sip_port, w.up, w.calls, w.free, w.restarts)))
    console.print(table)


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
    as_json: AsJson = False,
) -> None:
    """Add a SIP trunk to a carrier."""
    from gateway.calls import service
    from gateway.calls.schemas import TrunkSpec, describe
    from gateway.core.errors import AcsError

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
            }
        )
    except ValidationError as exc:
        raise _fail(describe(exc), 2) from exc
    try:
        with _database().session() as session:
            data = service.trunk_json(service.add_trunk(session, spec), spec.carrier)
    except AcsError as exc:
        raise _fail(exc.message) from exc
    if as_json:
        _print_json(data)
        return
    console.print(f"added SIP trunk [bold]{name}[/bold] ({spec.transport}:{spec.host}:{spec.port})")


@trunk_app.command("list")
def trunk_list(as_json: AsJson = False) -> None:
    """List SIP trunks."""
    from gateway.calls import service

    with _database().session() as session:
        rows = service.list_trunks(session)
    if as_json:
        _print_json(rows)
        return
    table = Table("name", "carrier", "address", "allow", "auth", "codecs", "srtp")
    for row in rows:
        auth = f"{row['username']}{' +register' if row['register'] else ''}" if row["username"] else "-"
        table.add_row(
            row["name"],
            row["carrier"],
            f"{row['transport']}:{row['host']}:{row['port']}",
            ", ".join(row["allow"]) or "(host)",
            auth,
            ",".join(row["codecs"]),
            row["srtp"],
        )
    console.print(table)


@trunk_app.command("remove")
def trunk_remove(name: str) -> None:
    """Remove a SIP trunk (and its place in every route)."""
    from gateway.calls import service
    from gateway.core.errors import AcsError

    try:
        with _database().session() as session:
            service.remove_trunk(session, name)
    except AcsError as exc:
        raise _fail(exc.message) from exc
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
    from gateway.core.errors import AcsError

    try:
        spec = RouteSpec(prefix=prefix, trunks=trunk)
    except ValidationError as exc:
        raise _fail(describe(exc), 2) from exc
    try:
        with _database().session() as session:
            route = service.add_route(session, spec)
    except AcsError as exc:
        raise _fail(exc.message) from exc
    if as_json:
        _print_json(route)
        return
    console.print(f"route {route['prefix']} -> {', '.join(route['trunks'])}", highlight=False)


@route_app.command("list")
def route_list(as_json: AsJson = False) -> None:
    """List routes, each prefix with its trunks in failover order."""
    from gateway.calls import service

    with _database().session() as session:
        rows = service.list_routes(session)
    if as_json:
        _print_json(rows)
        return
    table = Table("prefix", "trunks (in failover order)")
    for row in rows:
        table.add_row(row["prefix"], ", ".join(row["trunks"]))
    console.print(table)


@route_app.command("remove")
def route_remove(
    prefix: Annotated[str, typer.Option(help="The route's prefix.")],
    trunk: Annotated[str | None, typer.Option(help="Remove only this trunk from the route.")] = None,
) -> None:
    """Remove a prefix's route, or one trunk from it."""
    from gateway.calls import service
    from gateway.core.errors import AcsError

    try:
        with _database().session() as session:
            service.remove_route(session, prefix, trunk)
    except AcsError as exc:
        raise _fail(exc.message) from exc
    console.print(f"removed route {prefix}{f' -> {trunk}' if trunk else ''}", highlight=False)


@sip_app.command("apply")
def apply(path: Annotated[Path, typer.Argument(help="TOML file with [[trunks]] and [[routes]].")]) -> None:
    """Create or update trunks and set routes from a file (TRUNKLINE_SIP_CONFIG_FILE's format)."""
    from gateway.calls import service
    from gateway.core.errors import AcsError

    try:
        with _database().session() as session:
            applied = service.apply_config_file(session, path)
    except AcsError as exc:
        raise _fail(exc.message) from exc
    console.print(f"{applied.trunks} trunks applied, {applied.routes} routes set")
