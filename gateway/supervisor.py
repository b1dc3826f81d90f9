"""``trunkline up``: every role on one machine, as child processes restarted when they die.

The roles are gateway.roles' supervised ones; a role added there is run here too.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pydantic import SecretStr
from rich.console import Console

from gateway.core.local_state import (
    LOOPBACK_NETWORKS,
    LocalGateway,
    default_data_dir_and_reason,
    state_file,
    write_local_gateway,
)
from gateway.core.settings import DEFAULT_API_PORT, Settings, is_strong_secret
from gateway.roles import SIP, supervised_roles

console = Console(stderr=True, soft_wrap=True)

RESTART_BACKOFF_MAX = 30.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class Child:
    """A role's child process under ``trunkline up``, restarted with a backoff when it dies."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    failures: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)


def local_roles() -> list[Child]:
    """A child for each supervised role, running ``trunkline <command>`` with this interpreter.

    The SIP role runs with ``--edge none`` when Kamailio is not installed (one worker faces the
    trunk: 4 calls), and says how to get more."""
    from sip.worker.config import MAX_CALLS_PER_WORKER, NO_EDGE_HINT, kamailio_available

    python = sys.executable
    children = []
    for role in supervised_roles():
        argv = [python, "-m", "gateway", role.command]
        if role.metrics_port is not None:  # one port per role; the API's are on its HTTPS port
            argv += ["--metrics-port", str(role.metrics_port)]
        if role is SIP and not kamailio_available():
            console.print(f"[yellow]{NO_EDGE_HINT.format(calls=MAX_CALLS_PER_WORKER)}")
            argv += ["--edge", "none"]
        children.append(Child(role.name, argv))
    return children


def metrics_line(settings: Settings) -> str:
    """Where each role's metrics are scraped, each process exporting only its own."""
    ports = [
        f"{role.name} :{role.metrics_port}" for role in supervised_roles() if role.metrics_port is not None
    ]
    return f"{settings.effective_public_endpoint}metrics (api), " + ", ".join(ports) + " (/metrics)"


def local_operator_token(settings: Settings) -> str:
    """The operator token for local mode: the environment's if set, else one kept in the data dir."""
    if settings.operator_token and is_strong_secret(settings.operator_token):
        return settings.operator_token.get_secret_value()
    path: Path = settings.operator_token_file
    if path.exists():
        token = path.read_text().strip()
        if is_strong_secret(SecretStr(token)):
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def local_secrets_key(settings: Settings) -> None:
    """Local mode keeps a key to encrypt stored secrets with in the data dir (unless one is
    configured), and encrypts what an earlier version stored in plain text."""
    import gateway.models  # noqa: F401 - registers every table, so every sealed column is found
    from gateway.core.db import Base, Database
    from gateway.core.sealed_columns import keyring_of
    from gateway.core.secrets import write_key_file
    from gateway.core.secrets_store import reseal

    if not settings.has_secrets_key():
        write_key_file(settings.effective_secrets_keys_dir)
    database = Database(settings.effective_database_url)
    try:
        report = reseal(database, Base.metadata, keyring_of(settings), plain_only=True)
    finally:
        database.dispose()
    if report.resealed:
        console.print(f"encrypted {report.resealed} stored secrets")


@dataclass(frozen=True)
class LocalLaunch:
    """What ``trunkline up`` starts with: its settings, its children's environment, what it tells
    other shells (the state file) and the lines of its banner."""

    settings: Settings
    env: dict[str, str]
    gateway: LocalGateway
    banner: list[str]


def _existing_resources(settings: Settings) -> list[tuple[str, str]]:
    """(name, endpoint) of the resources already in the local database (a second start)."""
    if settings.database_url or not (settings.data_dir / "trunkline.db").is_file():
        return []
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    engine = create_engine(settings.effective_database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT name, endpoint FROM resources ORDER BY created_at"))
            return [(str(name), str(endpoint)) for name, endpoint in rows]
    except SQLAlchemyError:
        return []
    finally:
        engine.dispose()


def _next_steps(settings: Settings, state_written: bool) -> list[str]:
    """The banner's ``next:`` line, and a warning for resources that name another endpoint."""
    endpoint = settings.effective_public_endpoint
    if state_written:
        prefix = ""  # commands of other shells find this gateway through the state file
    else:
        port_env = "" if settings.api_port == DEFAULT_API_PORT else f" TRUNKLINE_API_PORT={settings.api_port}"
        prefix = f"TRUNKLINE_DATA_DIR={settings.data_dir}{port_env} "
    existing = _existing_resources(settings)
    if not existing:
        return [f"next:            {prefix}trunkline resources create my-app --json"]
    lines = [f"next:            {prefix}trunkline resources show {existing[0][0]} --json"]
    elsewhere = [name for name, named in existing if named != endpoint]
    if elsewhere:
        lines.append(
            f"note:            {', '.join(elsewhere)} name another endpoint in their connection strings "
            f"(created while the gateway answered elsewhere); this one is {endpoint}"
        )
    return lines


def prepare_local(host: str, port: int, environ: dict[str, str] | None = None) -> LocalLaunch:
    """Data dir, operator token and TLS for local mode; the children's environment; the banner."""
    from gateway.core.storage import prepare_storage
    from gateway.core.tls import ensure_local_tls

    environ = dict(os.environ if environ is None else environ)
    settings = Settings(api_host=host, api_port=port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = local_operator_token(settings)
    prepare_storage(settings)
    local_secrets_key(settings)
    tls = None
    if not settings.tls_cert_file:
        tls = ensure_local_tls(settings.tls_dir, [host])
    # Local webhooks (a receiver on this machine) validate out of the box; an explicit setting wins.
    networks = settings.webhook_allowed_networks or list(LOOPBACK_NETWORKS)
    env = dict(environ)
    env.update(
        TRUNKLINE_DATA_DIR=str(settings.data_dir),
        TRUNKLINE_API_HOST=host,
        TRUNKLINE_API_PORT=str(port),
        TRUNKLINE_OPERATOR_TOKEN=token,
        TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS=",".join(networks),
    )
    gateway = LocalGateway(
        pid=os.getpid(),
        data_dir=settings.data_dir,
        endpoint=settings.effective_public_endpoint,
        api_host=host,
        api_port=port,
        webhook_allowed_networks=tuple(networks),
    )
    banner = [
        f"endpoint:        {settings.effective_public_endpoint}",
        f"data dir:        {settings.data_dir}",
    ]
    if "TRUNKLINE_DATA_DIR" not in environ:
        why = default_data_dir_and_reason()[1]
        if why:
            banner.append(f"  note:          {why}")
    banner += [
        f"database:        {settings.effective_database_url}",
        f"broker:          {settings.broker_url or 'local filesystem queue (no Redis needed)'}",
    ]
    if tls is not None:
        banner.append(f"TLS CA:          {tls.ca_file}")
        banner.append(f"  trust it:      export REQUESTS_CA_BUNDLE={tls.ca_file} SSL_CERT_FILE={tls.ca_file}")
    token_source = (
        "TRUNKLINE_OPERATOR_TOKEN"
        if environ.get("TRUNKLINE_OPERATOR_TOKEN")
        else settings.operator_token_file
    )
    banner.append(f"operator token:  {token_source}")
    if settings.webhook_allowed_networks:
        banner.append(
            f"webhooks:        may reach {', '.join(networks)} (TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS)"
        )
    else:
        banner.append(
            "webhooks:        loopback allowed in local mode "
            f"(TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS={','.join(networks)})"
        )
    banner.append("metrics:         " + metrics_line(settings))
    state = state_file()
    if state is not None:
        banner.append(f"state file:      {state} (commands in other shells use this gateway)")
    banner += _next_steps(settings, state_written=state is not None)
    return LocalLaunch(settings, env, gateway, banner)


def run_local(host: str, port: int) -> None:
    launch = prepare_local(host, port)
    write_local_gateway(launch.gateway)
    console.rule("[bold]Trunkline is starting")
    for line in launch.banner:
        console.print(line, markup=False, highlight=False)
    console.rule()
    supervise(local_roles(), launch.env)


def supervise(roles: list[Child], env: dict[str, str]) -> None:
    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        while not stopping:
            now = time.monotonic()
            for role in roles:
                if role.process is not None and role.process.poll() is not None:
                    code = role.process.returncode
                    lived = now - role.started_at
                    role.failures = 0 if lived > 60 else role.failures + 1
                    delay = min(RESTART_BACKOFF_MAX, 0.5 * 2**role.failures)
                    console.print(f"[yellow]{role.name} exited with {code}; restarting in {delay:.1f}s")
                    role.process = None
                    role.next_start = now + delay
                if role.process is None and now >= role.next_start:
                    # Its own process group: Ctrl+C reaches `up` alone, which stops the children
                    # in order (no Celery "Hitting Ctrl+C again" among them).
                    role.process = subprocess.Popen(role.argv, env=env, process_group=0)  # noqa: S603 - our own interpreter and module
                    role.started_at = now
            time.sleep(0.2)
    finally:
        for role in roles:
            if role.process is not None and role.process.poll() is None:
                role.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for role in roles:
            if role.process is None:
                continue
            try:
                role.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                role.process.kill()
                role.process.wait()
