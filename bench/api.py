"""Signed requests per second through a real ``trunkline api``, one process against several.

Side by side in one run: ``trunkline api --workers N`` for each N given, on SQLite (default) or
a throw-away PostgreSQL database, loaded by ``wrk`` (Debian package ``wrk``) replaying one
HMAC-signed ``POST /identities/{id}/:issueAccessToken`` (auth, a database read, an ES256
signature) over keep-alive TLS connections. A signature stays valid for 15 minutes, so one
signed request can be replayed for the whole run.

    .venv/bin/python -m bench.api [--workers 1 2] [--seconds 10] [--connections 32]
                                  [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bench import use_secrets_key
from bench.apt import ensure_apt
from gateway.core.hmac_auth import sign_request
from tests.support.postgres import throwaway_database

IDENTITY_API = "2023-10-01"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(port: int, ca_file: Path, timeout: float = 30.0) -> None:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file.exists() else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if context is None:
                context = ssl.create_default_context(cafile=str(ca_file))
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/health", context=context, timeout=1):
                return
        except (OSError, ssl.SSLError, FileNotFoundError):
            time.sleep(0.2)
    raise RuntimeError(f"trunkline api on port {port} did not become healthy")


@contextmanager
def api_server(env: dict[str, str], workers: int) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "api", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port, Path(env["TRUNKLINE_DATA_DIR"]) / "tls" / "ca.pem")
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def lua_script(path_and_query: str, headers: dict[str, str], body: bytes) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()]
    lines.append(f"wrk.path = {json.dumps(path_and_query)}")
    return "\n".join(lines) + "\n"


WRK_THREADS = 2


def run_wrk(port: int, script: Path, seconds: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "-t",
            str(WRK_THREADS),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"https://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests_per_s": requests,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def main() -> None:
    use_secrets_key()
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    ensure_apt("wrk", "wrk")
    with ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = dict(os.environ)
        env.update(
            TRUNKLINE_DATA_DIR=str(data_dir),
            TRUNKLINE_OPERATOR_TOKEN=secrets.token_urlsafe(32),
            TRUNKLINE_LOG_LEVEL="WARNING",
        )
        if args.backend == "postgresql":
            env["TRUNKLINE_DATABASE_URL"] = stack.enter_context(throwaway_database("trunkline_bench"))
        created = subprocess.run(
            [sys.executable, "-m", "gateway", "resources", "create", "bench", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        resource = json.loads(created.stdout)
        print(
            f"trunkline api, {args.backend}, wrk -c {args.connections} -d {args.seconds}s, "
            f"signed POST /identities/{{id}}/:issueAccessToken ({os.cpu_count()} cores)"
        )
        print(f"{'workers':>8} {'requests/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        results: dict[int, dict[str, float]] = {}
        for workers in args.workers:
            with api_server(env, workers) as port:
                host = f"127.0.0.1:{port}"
                identity_body = b"{}"
                path = f"/identities?api-version={IDENTITY_API}"
                signed = sign_request(
                    "POST", path, host, identity_body, resource["primaryKey"], datetime.now(UTC)
                )
                request = urllib.request.Request(
                    f"https://{host}{path}",
                    data=identity_body,
                    method="POST",
                    headers={**signed, "Content-Type": "application/json"},
                )
                context = ssl.create_default_context(cafile=str(data_dir / "tls" / "ca.pem"))
                with urllib.request.urlopen(request, context=context) as response:
                    identity = json.loads(response.read())["identity"]["id"]
                token_path = f"/identities/{identity}/:issueAccessToken?api-version={IDENTITY_API}"
                body = json.dumps({"scopes": ["voip"]}).encode()
                headers = {
                    **sign_request("POST", token_path, host, body, resource["primaryKey"], datetime.now(UTC)),
                    "Content-Type": "application/json",
                }
                script = data_dir / f"wrk-{workers}.lua"
                script.write_text(lua_script(token_path, headers, body))
                result = run_wrk(port, script, args.seconds, args.connections)
                results[workers] = result
                print(
                    f"{workers:>8} {result['requests_per_s']:>11.0f} {result['p50_ms']:>8.2f} "
                    f"{result['p99_ms']:>8.2f} {result['non_2xx']:>8.0f}"
                )
        base = results[args.workers[0]]["requests_per_s"]
        for workers in args.workers[1:]:
            print(f"{workers} workers / {args.workers[0]}: {results[workers]['requests_per_s'] / base:.2f}x")


if __name__ == "__main__":
    main()
