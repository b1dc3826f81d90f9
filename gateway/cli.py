"""The ``trunkline`` command: run roles (up, api), migrate, and manage resources and keys offline."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from gateway.core.cli_database import command_session, migrated_database
from gateway.core.cli_output import console, prepare_offline_command, print_table
from gateway.core.cli_output import fail as _fail
from gateway.core.cli_output import print_json as _print_json
from gateway.core.settings import InsecureSettingsError, Settings, get_settings
from gateway.numbers.cli import carriers_app, numbers_app
from gateway.roles import API, ROLES, SMPP, UP, WORKER

app = typer.Typer(
    help="Trunkline: a self-hosted PSTN/SMS gateway that speaks the ACS wire protocol.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
resources_app = typer.Typer(help="Communication resources (tenants) and their keys.", no_args_is_help=True)
keys_app = typer.Typer(help="Access-token signing keys.", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Keys that encrypt stored secrets (access keys, SMPP/SIP passwords, webhook secrets).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(resources_app, name="resources")
app.add_typer(keys_app, name="keys")
app.add_typer(secrets_app, name="secrets")
app.add_typer(numbers_app, name="numbers")
app.add_typer(carriers_app, name="carriers")


@app.callback()
def _command(ctx: typer.Context) -> None:
    # Roles configure themselves; `trunkline smpp` is a role only without a sub-command, which
    # its own callback decides (gateway.sms.cli).
    if ctx.invoked_subcommand not in {role.command for role in ROLES}:
        prepare_offline_command()


def _events_app() -> typer.Typer:
    from gateway.events.cli import events_app

    return events_app


app.add_typer(_events_app(), name="events")


def _smpp_app() -> typer.Typer:
    from gateway.sms.cli import smpp_app

    return smpp_app


app.add_typer(_smpp_app(), name=SMPP.command)


def _sms_app() -> typer.Typer:
    from gateway.sms.cli import sms_app

    return sms_app


app.add_typer(_sms_app(), name="sms")


def _sip_app() -> typer.Typer:
    from gateway.calls.cli import sip_app  # trunks and routes; the SIP process will be its callback

    return sip_app


app.add_typer(_sip_app(), name="sip")


def _status_command() -> Any:
    from gateway.status_cli import status

    return status


app.command("status")(_status_command())


# Roles ------------------------------------------------------------------------------------------


@app.command(API.command)
def api(
    host: Annotated[str | None, typer.Option(help="Address to listen on (TRUNKLINE_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (TRUNKLINE_API_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="API processes (TRUNKLINE_API_WORKERS).")] = None,
) -> None:
    """Serve the HTTPS API (data plane and operator admin API)."""
    overrides: dict[str, Any] = {}
    if workers is not None:
        overrides["api_workers"] = workers
    if host is not None:
        overrides["api_host"] = host
    if port is not None:
        overrides["api_port"] = port
    settings = Settings(**overrides) if overrides else get_settings()
    try:
        settings.require_production_secrets()
    except InsecureSettingsError as exc:
        raise _fail(f"refusing to start: {exc}", 2) from exc
    API.entry_point.load()(settings)


@app.command(WORKER.command)
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Delivery threads (TRUNKLINE_EVENTS_DELIVERY_CONCURRENCY).")
    ] = None,
    dispatcher: Annotated[bool, typer.Option(help="Run the outbox dispatcher in this process.")] = True,
    deliveries: Annotated[bool, typer.Option(help="Run the Celery delivery worker in this process.")] = True,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on this port.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Celery node name.")] = None,
) -> None:
    """Run the event workers (outbox dispatcher, webhook deliveries) against TRUNKLINE_BROKER_URL."""
    if not (dispatcher or deliveries):
        raise _fail("nothing to run: give --dispatcher, --deliveries or both", 2)
    WORKER.entry_point.load()(
        concurrency=concurrency,
        dispatcher=dispatcher,
        deliveries=deliveries,
        metrics_port=metrics_port,
        hostname=hostname,
    )


@app.command(UP.command)
def up(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTPS port.")] = 8443,
) -> None:
    """Run every role on this machine with embedded defaults (SQLite, no Redis needed)."""
    UP.entry_point.load()(host, port)


# Database ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from gateway.core.db import Database
    from gateway.core.migrate import current_revision, upgrade

    settings = get_settings()
    database = Database(settings.effective_database_url)
    upgrade(database.engine, revision)
    console.print(f"database at revision {current_revision(database.engine)}")


# Resources --------------------------------------------------------------------------------------


def _resource_json(resource: Any) -> dict[str, Any]:
    from gateway.resources.schemas import ResourceWithKeys

    return ResourceWithKeys.of(resource).model_dump(mode="json", by_alias=True)


@resources_app.command("create")
def resources_create(
    name: str,
    endpoint: Annotated[
        str | None, typer.Option(help="https URL tenants use (default: the public endpoint).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a resource and print its keys and connection strings."""
    from gateway.resources import service

    settings = get_settings()
    with command_session() as session:
        resource = service.create_resource(session, name, endpoint or settings.effective_public_endpoint)
        data = _resource_json(resource)
    if as_json:
        _print_json(data)
        return
    console.print(f"created resource [bold]{data['name']}[/bold] ({data['id']})")
    console.print(f"connection string: {data['connectionString']}", soft_wrap=True)


@resources_app.command("list")
def resources_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List resources."""
    from gateway.resources import service

    with command_session() as session:
        rows = [
            {"id": r.id, "name": r.name, "endpoint": r.endpoint, "createdAt": r.created_at.isoformat()}
            for r in service.list_resources(session)
        ]
    if as_json:
        _print_json(rows)
        return
    print_table(
        ("name", "id", "endpoint", "created"),
        [(row["name"], row["id"], row["endpoint"], row["createdAt"]) for row in rows],
    )


@resources_app.command("show")
def resources_show(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (show always does).")] = False,
) -> None:
    """Print one resource with its keys, as JSON."""
    from gateway.resources import service

    with command_session() as session:
        _print_json(_resource_json(service.get_resource(session, name)))


@resources_app.command("delete")
def resources_delete(
    name: str, yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Delete a resource and everything it owns."""
    from gateway.core.errors import AcsError
    from gateway.resources import service

    database = migrated_database()
    try:
        if not yes:
            with database.session() as session:
                service.get_resource(session, name)  # NotFound before the question
            typer.confirm(f"Delete resource {name} and all its data?", abort=True)
        with database.session() as session:
            service.delete_resource(session, name)
    except AcsError as exc:
        raise _fail(exc.message) from exc
    console.print(f"deleted {name}")


@resources_app.command("regenerate-key")
def resources_regenerate_key(
    name: str,
    primary: Annotated[bool, typer.Option("--primary", help="Regenerate the primary key.")] = False,
    secondary: Annotated[bool, typer.Option("--secondary", help="Regenerate the secondary key.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Replace one key; the old one stops working at once."""
    from gateway.resources import service

    if primary == secondary:
        raise _fail("give exactly one of --primary or --secondary", 2)
    key_type = service.KeyType.PRIMARY if primary else service.KeyType.SECONDARY
    with command_session() as session:
        data = _resource_json(service.regenerate_key(session, name, key_type))
    if as_json:
        _print_json(data)
        return
    which = "primaryConnectionString" if primary else "secondaryConnectionString"
    console.print(f"new {key_type.value} connection string: {data[which]}", soft_wrap=True)


# Signing keys -----------------------------------------------------------------------------------


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; it signs from now on, older keys still verify."""
    from gateway.identity.tokens import Keyring, generate_key_file

    settings = get_settings()
    path = generate_key_file(settings.effective_token_keys_dir)
    key = Keyring(settings.effective_token_keys_dir, create=False).signing_key
    console.print(f"new signing key {key.kid} in {path}")


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List signing keys, newest (signing) first."""
    from gateway.identity.tokens import Keyring

    settings = get_settings()
    keyring = Keyring(
        settings.effective_token_keys_dir,
        settings.token_signing_key.get_secret_value() if settings.token_signing_key else None,
        create=False,
    )
    keys = keyring.keys()
    if as_json:
        _print_json([{"kid": key.kid, "signing": index == 0} for index, key in enumerate(keys)])
        return
    for index, key in enumerate(keys):
        console.print(f"{key.kid}{'  (signing)' if index == 0 else ''}")


@keys_app.command("retire")
def keys_retire(kid: str) -> None:
    """Remove a key: tokens it signed stop verifying.

    A key id is base64url and may begin with "-": give it after "--"
    (trunkline keys retire -- -aAaN...).
    """
    from gateway.identity.tokens import SigningKey

    settings = get_settings()
    for path in settings.effective_token_keys_dir.glob("*.pem"):
        if SigningKey.from_pem(path.read_bytes()).kid == kid:
            path.unlink()
            console.print(f"retired {kid}")
            return
    raise _fail(f"no key {kid} in {settings.effective_token_keys_dir}")


# Secrets at rest --------------------------------------------------------------------------------


def _sealed_store(settings: Settings) -> tuple[Any, Any]:
    """The database and the metadata of every table (so every sealed column is found)."""
    import gateway.models  # noqa: F401 - registers every domain's tables
    from gateway.core.db import Base

    return migrated_database(settings.effective_database_url), Base.metadata


def _reseal(settings: Settings) -> None:
    from gateway.core.sealed_columns import keyring_of
    from gateway.core.secrets import SecretsError
    from gateway.core.secrets_store import reseal

    database, metadata = _sealed_store(settings)
    keyring = keyring_of(settings)
    try:
        report = reseal(database, metadata, keyring)
    except SecretsError as exc:
        raise _fail(str(exc)) from exc
    finally:
        database.dispose()
    kid = keyring.sealing_key().kid
    console.print(f"encrypted {report.resealed} secrets with key {kid} ({report.current} already were)")
    if report.skipped:
        console.print(f"[yellow]{report.skipped} changed meanwhile: run `trunkline secrets encrypt` again")


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Add a new key to the key directory and encrypt every stored secret with it."""
    from gateway.core.secrets import write_key_file

    settings = get_settings()
    if settings.secrets_keys is not None and settings.secrets_keys.get_secret_value().strip():
        raise _fail(
            "the keys come from TRUNKLINE_SECRETS_KEYS: put a new key first in it on every node "
            "(`trunkline secrets new-key` prints one), then run `trunkline secrets encrypt`"
        )
    path, key = write_key_file(settings.effective_secrets_keys_dir)
    console.print(f"new secrets key {key.kid} in {path}")
    _reseal(settings)


@secrets_app.command("encrypt")
def secrets_encrypt() -> None:
    """Encrypt every stored secret that is plain, or under an older key, with the newest key."""
    settings = get_settings()
    if not settings.has_secrets_key():
        raise _fail(
            "no secrets key: set TRUNKLINE_SECRETS_KEYS, or create a key file with `trunkline secrets rotate`"
        )
    _reseal(settings)


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new random key for TRUNKLINE_SECRETS_KEYS (nothing is stored)."""
    from gateway.core.secrets import generate_key

    sys.stdout.write(generate_key().text() + "\n")


@secrets_app.command("list")
def secrets_list() -> None:
    """List the keys, newest (encrypting) first, with how many stored secrets each encrypts."""
    from gateway.core.sealed_columns import keyring_of
    from gateway.core.secrets_store import PLAIN, census

    settings = get_settings()
    database, metadata = _sealed_store(settings)
    try:
        counts = census(database, metadata)
    finally:
        database.dispose()
    keys = keyring_of(settings).keys()
    configured = {key.kid for key in keyring_of(settings).configured}
    for index, key in enumerate(keys):
        source = "TRUNKLINE_SECRETS_KEYS" if key.kid in configured else settings.effective_secrets_keys_dir
        sealing = "  (encrypts)" if index == 0 else ""
        console.print(f"{key.kid}  {counts.pop(key.kid, 0)} secrets  {source}{sealing}", soft_wrap=True)
    plain = counts.pop(PLAIN, 0)
    if plain:
        console.print(f"{plain} secrets stored in plain text: run `trunkline secrets encrypt`")
    for kid, count in sorted(counts.items()):
        console.print(f"[red]{kid}  {count} secrets under a key that is not configured here[/red]")


@secrets_app.command("retire")
def secrets_retire(kid: str) -> None:
    """Remove a key from the key directory; refused while a stored secret is encrypted with it.

    A key id is base64url and may begin with "-": give it after "--"
    (trunkline secrets retire -- -aAaN...).
    """
    from gateway.core.sealed_columns import keyring_of
    from gateway.core.secrets import SecretsKey, key_files
    from gateway.core.secrets_store import census

    settings = get_settings()
    keyring = keyring_of(settings)
    keys = keyring.keys()
    if kid not in {key.kid for key in keys}:
        raise _fail(f"no secrets key {kid}")
    if keys[0].kid == kid:
        raise _fail(f"{kid} encrypts new secrets: add a newer key first (`trunkline secrets rotate`)")
    database, metadata = _sealed_store(settings)
    try:
        in_use = census(database, metadata).get(kid, 0)
    finally:
        database.dispose()
    if in_use:
        raise _fail(f"{in_use} secrets are encrypted with {kid}; run `trunkline secrets encrypt` first")
    if kid in {key.kid for key in keyring.configured}:
        raise _fail(f"{kid} comes from TRUNKLINE_SECRETS_KEYS: no secret uses it; remove it there")
    for path in key_files(settings.effective_secrets_keys_dir):
        if SecretsKey.parse(path.read_text()).kid == kid:
            path.unlink()
            console.print(f"retired {kid}")
            return
    raise _fail(f"no key {kid} in {settings.effective_secrets_keys_dir}")


def main() -> None:
    from gateway.core.logging import configure_logging

    # JSON lines or human-readable ones as TRUNKLINE_LOG_FORMAT (or TRUNKLINE_LOG_JSON, or
    # whether stderr is a terminal) says; commands other than roles then log warnings only.
    configure_logging(os.environ.get("TRUNKLINE_LOG_LEVEL", "INFO"))
    app()
