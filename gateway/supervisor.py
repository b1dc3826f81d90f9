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

from gateway.core.settings import Settings, is_strong_secret
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
    from sip.worker.config import MAX_CALLS_PER_WORKER
    from sip.worker.main import NO_EDGE_HINT, kamailio_available

    python = sys.executable
    children = []
    for role in supervised_roles():
        argv = [python, "-m", "gateway", role.command]
        if role is SIP and not kamailio_available():
            console.print(f"[yellow]{NO_EDGE_HINT.format(calls=MAX_CALLS_PER_WORKER)}")
            argv += ["--edge", "none"]
        children.append(Child(role.name, argv))
    return children


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


def run_local(host: str, port: int) -> None:
    from gateway.core.storage import prepare_storage
    from gateway.core.tls import ensure_local_tls

    settings = Settings(api_host=host, api_port=port)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = local_operator_token(settings)
    prepare_storage(settings)
    tls = None
    if not settings.tls_cert_file:
        tls = ensure_local_tls(settings.tls_dir, [host])
    env = dict(os.environ)
    env.update(
        TRUNKLINE_DATA_DIR=str(settings.data_dir),
        TRUNKLINE_API_HOST=host,
        TRUNKLINE_API_PORT=str(port),
        TRUNKLINE_OPERATOR_TOKEN=token,
    )
    console.rule("[bold]Trunkline is starting")
    console.print(f"endpoint:        {settings.effective_public_endpoint}")
    console.print(f"data dir:        {settings.data_dir}")
    console.print(f"database:        {settings.effective_database_url}")
    console.print(f"broker:          {settings.broker_url or 'local filesystem queue (no Redis needed)'}")
    if tls is not None:
        console.print(f"TLS CA:          {tls.ca_file}")
        console.print(f"  trust it:      export REQUESTS_CA_BUNDLE={tls.ca_file} SSL_CERT_FILE={tls.ca_file}")
    token_source = (
        "TRUNKLINE_OPERATOR_TOKEN"
        if os.environ.get("TRUNKLINE_OPERATOR_TOKEN")
        else settings.operator_token_file
    )
    console.print(f"operator token:  {token_source}")
    port_env = "" if port == 8443 else f" TRUNKLINE_API_PORT={port}"
    next_command = f"TRUNKLINE_DATA_DIR={settings.data_dir}{port_env} trunkline resources create my-app"
    console.print(f"next:            {next_command} --json")
    console.rule()
    supervise(local_roles(), env)


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
                    role.process = subprocess.Popen(role.argv, env=env)  # noqa: S603 - our own interpreter and module
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
