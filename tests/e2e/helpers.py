"""Real processes for the end-to-end tests: a ``trunkline api`` server, coturn, a throw-away
PostgreSQL database, and an httpx auth that signs requests like the ACS SDKs.

Every process is started here, waited for with a bound, and stopped by its own PID.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from gateway.core.hmac_auth import sign_request
from tests.support.postgres import PostgresUnavailable, throwaway_database
from tests.support.secrets_keys import TEST_SECRETS_KEYS

IDENTITY_API = "2023-10-01"
TURN_REALM = "trunkline.test"
SERVER_START_TIMEOUT = 30.0
COTURN_START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
CLI_TIMEOUT = 60.0


class ProcessError(RuntimeError):
    """A helper process did not start, or misbehaved; the message carries its log tail."""


def strong_secret() -> str:
    return secrets.token_urlsafe(32)


def random_key() -> str:
    """A well-formed access key that belongs to no resource."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def free_port(*, udp_too: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP when asked) at the time of the call."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise ProcessError("no free port found on 127.0.0.1")


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log at {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def stop_process(proc: subprocess.Popen[Any], grace: float = 2.0, timeout: float = STOP_TIMEOUT) -> None:
    """Stop a process we started, by its PID: SIGTERM; after ``grace`` seconds SIGINT, which makes
    uvicorn stop waiting for idle TLS keep-alive connections of our SDK clients (it would wait out
    its 10 s graceful-shutdown timeout); SIGKILL after ``timeout``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
        return
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def parse_connection_string(connection_string: str) -> tuple[str, str]:
    """(endpoint, access key) of ``endpoint=...;accesskey=...``."""
    parts = dict(part.split("=", 1) for part in connection_string.split(";") if part)
    return parts["endpoint"], parts["accesskey"]


def connection_string(endpoint: str, key: str) -> str:
    return f"endpoint={endpoint};accesskey={key}"


def base_env() -> dict[str, str]:
    """The test process's environment without any TRUNKLINE_* or CA override of the shell."""
    dropped = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE")
    return {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_") and k not in dropped}


# HMAC signing for raw requests ----------------------------------------------------------------------


class AcsHmacAuth(httpx.Auth):
    """Signs an httpx request as an ACS SDK does. ``decode_url`` signs the percent-decoded
    path and query, as the async SDK clients do."""

    requires_request_body = True

    def __init__(self, key_b64: str, *, decode_url: bool = False) -> None:
        self.key_b64 = key_b64
        self.decode_url = decode_url

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path_and_query = request.url.raw_path.decode("ascii")
        if self.decode_url:
            path_and_query = unquote(path_and_query)
        request.headers.update(
            sign_request(
                request.method,
                path_and_query,
                request.headers["host"],
                request.content,
                self.key_b64,
                datetime.now(UTC),
            )
        )
        yield request


# coturn -----------------------------------------------------------------------------------------------


@dataclass
class Coturn:
    proc: subprocess.Popen[bytes]
    port: int
    secret: str
    realm: str
    log_file: Path
    command: list[str]

    @property
    def urls(self) -> list[str]:
        return [
            f"stun:127.0.0.1:{self.port}",
            f"turn:127.0.0.1:{self.port}?transport=udp",
            f"turn:127.0.0.1:{self.port}?transport=tcp",
        ]


def coturn_command(port: int, secret: str, workdir: Path) -> list[str]:
    return [
        "turnserver",
        "-n",  # no configuration file
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        f"--realm={TURN_REALM}",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-rfc5780",  # no alternate listening port (port + 1) to collide with
        "--allow-loopback-peers",  # coturn refuses 127.0.0.0/8 peers by default
        "--fingerprint",
        f"--userdb={workdir / 'turndb'}",  # not the system default in /var/lib/turn
        f"--pidfile={workdir / 'turnserver.pid'}",
        f"--log-file={workdir / 'turnserver.log'}",
        "--simple-log",
        "--no-stdout-log",
    ]


def stun_binding_ok(port: int, timeout: float = 0.3) -> bool:
    """True when a STUN Binding request to 127.0.0.1:port gets a success response."""
    transaction = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, ("127.0.0.1", port))
            data = sock.recv(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == transaction


def tcp_accepts(port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def running_coturn(workdir: Path, timeout: float = COTURN_START_TIMEOUT) -> Iterator[Coturn]:
    workdir.mkdir(parents=True, exist_ok=True)
    secret = strong_secret()
    port = free_port(udp_too=True)
    command = coturn_command(port, secret, workdir)
    output = workdir / "turnserver.out"
    with output.open("wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=workdir)
    coturn = Coturn(proc, port, secret, TURN_REALM, workdir / "turnserver.log", command)
    try:
        deadline = time.monotonic() + timeout
        while not (stun_binding_ok(port) and tcp_accepts(port)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ProcessError(
                    f"turnserver did not come up on 127.0.0.1:{port} (exit code {proc.poll()}):\n"
                    f"{log_tail(output)}\n{log_tail(coturn.log_file)}"
                )
            time.sleep(0.1)
        yield coturn
    finally:
        stop_process(proc)


# trunkline api ----------------------------------------------------------------------------------------


@dataclass
class TrunklineServer:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    env: dict[str, str]
    operator_token: str
    log_file: Path
    backend: str
    workdir: Path
    resources: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def http(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for this server that trusts only its generated CA."""
        return httpx.Client(base_url=self.endpoint, verify=self.ssl_context(), timeout=15, **kwargs)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log_file, lines)

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run ``python -m gateway ARGS`` with the server's environment (same database)."""
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            check=False,  # callers look at the return code
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def create_resource(self, name: str | None = None) -> dict[str, Any]:
        """Create a resource with the CLI (offline, straight into the database) and return its JSON."""
        name = name or f"e2e-{secrets.token_hex(4)}"
        result = self.cli("resources", "create", name, "--json")
        if result.returncode != 0:
            raise ProcessError(
                f"`trunkline resources create {name} --json` exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        data: dict[str, Any] = json.loads(result.stdout)
        self.resources.append(name)
        return data


def tcp_listening(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def fast_events_env(broker_url: str, webhook_ca: Path) -> dict[str, str]:
    """The event pipeline of a test stack: loopback webhooks trusted through the test CA, and
    dispatch, retries and redelivery in fractions of a second instead of production's minutes."""
    return {
        "TRUNKLINE_BROKER_URL": broker_url,
        "TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        "TRUNKLINE_WEBHOOK_CA_BUNDLE": str(webhook_ca),
        "TRUNKLINE_EVENTS_VISIBILITY_TIMEOUT_SECONDS": "5",
        "TRUNKLINE_EVENTS_UNACKED_RESTORE_INTERVAL_SECONDS": "1",
        "TRUNKLINE_EVENTS_RETRY_BASE_SECONDS": "0.2",
        "TRUNKLINE_EVENTS_RETRY_MAX_SECONDS": "1",
        "TRUNKLINE_EVENTS_DISPATCH_INTERVAL_SECONDS": "0.05",
        "TRUNKLINE_EVENTS_SCHEDULE_INTERVAL_SECONDS": "0.05",
    }


def trunkline_env(
    data_dir: Path,
    port: int,
    operator_token: str,
    *,
    turn_urls: list[str] | None = None,
    turn_secret: str | None = None,
    database_url: str | None = None,
) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "TRUNKLINE_DATA_DIR": str(data_dir),
            "TRUNKLINE_OPERATOR_TOKEN": operator_token,
            "TRUNKLINE_SECRETS_KEYS": TEST_SECRETS_KEYS,
            # The CLI needs these to print connection strings that point at this server.
            "TRUNKLINE_API_HOST": "127.0.0.1",
            "TRUNKLINE_API_PORT": str(port),
            "TRUNKLINE_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if turn_urls:
        env["TRUNKLINE_TURN_URLS"] = ",".join(turn_urls)
    if turn_secret:
        env["TRUNKLINE_TURN_SECRET"] = turn_secret
    if database_url:
        env["TRUNKLINE_DATABASE_URL"] = database_url
    return env


def api_command(port: int) -> list[str]:
    return [sys.executable, "-m", "gateway", "api", "--host", "127.0.0.1", "--port", str(port)]


@contextmanager
def running_trunkline(
    workdir: Path,
    *,
    turn_urls: list[str] | None = None,
    turn_secret: str | None = None,
    database_url: str | None = None,
    backend: str = "sqlite",
    timeout: float = SERVER_START_TIMEOUT,
    extra_env: dict[str, str] | None = None,
) -> Iterator[TrunklineServer]:
    """Start ``trunkline api`` on a free port and wait until /health answers over verified TLS."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    token = strong_secret()
    data_dir = workdir / "data"
    env = trunkline_env(
        data_dir, port, token, turn_urls=turn_urls, turn_secret=turn_secret, database_url=database_url
    )
    env.update(extra_env or {})
    log_file = workdir / "trunkline-api.log"
    with log_file.open("wb") as sink:
        proc = subprocess.Popen(
            api_command(port), env=env, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT
        )
    server = TrunklineServer(proc, port, data_dir, env, token, log_file, backend, workdir)
    try:
        _wait_healthy(server, timeout)
        yield server
    finally:
        stop_process(proc)


def _wait_healthy(server: TrunklineServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = "the CA file was never written"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        if server.ca_file.exists():
            try:
                with server.http() as client:
                    response = client.get("/health", timeout=2)
                if response.status_code == 200 and response.json() == {"status": "ok"}:
                    return
                last_error = f"/health answered {response.status_code}: {response.text[:200]}"
            except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
                last_error = f"{exc.__class__.__name__}: {exc}"
        time.sleep(0.1)
    code = server.proc.poll()
    raise ProcessError(
        f"trunkline api on port {server.port} not healthy within {timeout:.0f} s "
        f"(exit code {code}; last error: {last_error}). Log tail:\n{server.log_tail()}"
    )


# PostgreSQL -----------------------------------------------------------------------------------------


@contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """A new, empty database ``trunkline_e2e_<hex>``, dropped WITH (FORCE) afterwards."""
    try:
        with throwaway_database("trunkline_e2e") as url:
            yield url
    except PostgresUnavailable as exc:
        raise ProcessError(str(exc)) from exc
