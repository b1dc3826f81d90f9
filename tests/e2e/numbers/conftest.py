"""A real ``trunkline api`` process over HTTPS for the Phone Numbers SDK tests.

Inventory and resources are set up with the CLI (separate processes on the same database), the
SDK gets nothing but a connection string and trust in the generated CA. The server runs once per
backend: SQLite, then a throw-away PostgreSQL database (dropped WITH (FORCE) at the end).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.numbers.sample import US_AREAS, sample_rows, to_csv, toll_free_rows
from tests.support.postgres import throwaway_database
from tests.support.secrets_keys import TEST_SECRETS_KEYS

START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class NumbersServer:
    data_dir: Path
    env: dict[str, str]
    port: int
    backend: str
    process: subprocess.Popen[bytes] | None = None
    log_file: Path = field(default_factory=Path)

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: PLW1510 - checked below with the output in the message
            [sys.executable, "-m", "gateway", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"trunkline {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def create_resource(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.cli("resources", "create", name, "--json").stdout)
        return data

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_until_serving(server: NumbersServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    assert server.process is not None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"trunkline api exited ({server.process.returncode}):\n{server.log_tail()}")
        if server.ca_file.exists():
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"trunkline api did not start within {START_TIMEOUT}s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM; if the server is still waiting for idle keep-alive connections of the SDK's
    connection pools after 2 s, a SIGINT then makes uvicorn stop at once (its "force quit")."""
    for signal_number, timeout in ((signal.SIGTERM, 2.0), (signal.SIGINT, 10.0)):
        if process.poll() is not None:
            return
        process.send_signal(signal_number)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    process.kill()
    process.wait(timeout=5)


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def numbers_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NumbersServer]:
    backend: str = request.param
    data_dir = tmp_path_factory.mktemp(f"numbers-e2e-{backend}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
    port = free_port()
    env.update(
        TRUNKLINE_DATA_DIR=str(data_dir),
        TRUNKLINE_OPERATOR_TOKEN=secrets.token_urlsafe(32),
        TRUNKLINE_SECRETS_KEYS=TEST_SECRETS_KEYS,
        TRUNKLINE_API_HOST="127.0.0.1",
        TRUNKLINE_API_PORT=str(port),
        TRUNKLINE_NUMBERS_RELEASE_QUARANTINE_MINUTES="0",
        TRUNKLINE_LOG_JSON="false",
    )
    cleanup = ExitStack()
    if backend == "postgresql":
        env["TRUNKLINE_DATABASE_URL"] = cleanup.enter_context(throwaway_database("trunkline_numbers_e2e"))
    server = NumbersServer(data_dir, env, port, backend, log_file=data_dir / "api.log")
    try:
        # Inventory with the CLI, before and while the API runs (same database, other processes).
        server.cli("carriers", "add", "acme", "--kind", "both", "--notes", "e2e")
        stock = data_dir / "stock.csv"
        rows = list(sample_rows(30, US_AREAS[:2])) + list(toll_free_rows(10))
        stock.write_text(to_csv(rows))
        server.cli("numbers", "import", str(stock), "--carrier", "acme")
        with server.log_file.open("wb") as log:
            server.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "api"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_until_serving(server)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_file))
            patch.setenv("SSL_CERT_FILE", str(server.ca_file))
            yield server
    finally:
        if server.process is not None:
            _stop(server.process)
        cleanup.close()


@pytest.fixture(scope="session")
def tenant_a(numbers_server: NumbersServer) -> dict[str, Any]:
    return numbers_server.create_resource(f"numbers-a-{numbers_server.backend}")


@pytest.fixture(scope="session")
def tenant_b(numbers_server: NumbersServer) -> dict[str, Any]:
    return numbers_server.create_resource(f"numbers-b-{numbers_server.backend}")
