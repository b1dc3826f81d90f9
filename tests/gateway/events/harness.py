"""Test harness for the event pipeline: private Redis servers, an https webhook receiver, and real
``trunkline worker`` processes (all killed by PID). PostgreSQL databases: tests/support/postgres.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent
from standardwebhooks.webhooks import Webhook

from gateway.core.tls import TlsFiles, ensure_local_tls
from tests.support.secrets_keys import TEST_SECRETS_KEYS
from tests.support.waiting import wait_until

from .acs_spec import validate_event_data

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Redis ------------------------------------------------------------------------------------------


class RedisServer:
    """A private redis-server (no persistence) that tests may stop and restart."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.dir = tmp
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(up, 10, what="redis-server to start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


# Receiver ---------------------------------------------------------------------------------------


@dataclass
class Received:
    webhook_id: str
    event_id: str
    event_type: str
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An https webhook endpoint that validates, verifies signatures and parses with the SDK."""

    tls: TlsFiles
    schema: str = "EventGridSchema"
    secrets: list[str] = field(default_factory=list)
    mode: str = "ok"  # ok | status:<code> | hang:<seconds>
    echo_validation: bool = True
    allow_origin: bool = True
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    handshakes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hits: int = 0
    # Every notification request as it came (headers, body), answered or not.
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.hang_release = threading.Event()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_OPTIONS(self) -> None:
                origin = self.headers.get("webhook-request-origin", "")
                receiver.handshakes.append(f"OPTIONS {origin}")
                headers = {"WebHook-Allowed-Origin": origin} if receiver.allow_origin and origin else {}
                self._answer(200, headers=headers)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                if headers.get("aeg-event-type") == "SubscriptionValidation":
                    event = json.loads(body)[0]
                    receiver.handshakes.append(event["data"]["validationCode"])
                    answer = {"validationResponse": event["data"]["validationCode"]}
                    self._answer(200, json.dumps(answer).encode() if receiver.echo_validation else b"")
                    return
                with receiver.lock:
                    receiver.hits += 1  # notifications only, not handshakes
                    receiver.requests.append((headers, body))
                mode = receiver.mode
                if mode.startswith("hang:"):
                    receiver.hang_release.wait(float(mode.split(":")[1]))
                    self._answer(200)
                    return
                if mode.startswith("status:"):
                    self._answer(int(mode.split(":")[1]), b"receiver says no")
                    return
                try:
                    receiver.accept(headers, body)
                except Exception as exc:  # recorded, and answered as a client error
                    receiver.errors.append(repr(exc))
                    self._answer(400, repr(exc).encode())
                    return
                self._answer(200)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.tls.cert_file), str(self.tls.key_file))
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.server = server
        self.thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.hang_release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.hang_release = threading.Event()

    def accept(self, headers: dict[str, str], body: bytes) -> None:
        content_type = headers.get("content-type", "")
        verified = False
        for secret in self.secrets:
            Webhook(secret).verify(body, headers, json_parse=False)  # raises if it does not verify
            verified = True
        assert verified, "receiver has no secret to verify with"
        batched = False
        if self.schema == "EventGridSchema":
            assert content_type.startswith("application/json"), content_type
            items = json.loads(body)
            assert isinstance(items, list)
            parsed = [EventGridEvent.from_dict(item) for item in items]
            events = [(p.id, p.event_type, p.data) for p in parsed]
            batched = len(events) > 1
        elif content_type.startswith("application/cloudevents-batch+json"):
            items = json.loads(body)
            assert isinstance(items, list)
            cloud = [CloudEvent.from_dict(item) for item in items]
            events = [(c.id, c.type, c.data) for c in cloud]
            batched = len(events) > 1
        else:
            assert content_type.startswith("application/cloudevents+json"), content_type
            event = CloudEvent.from_dict(json.loads(body))
            events = [(event.id, event.type, event.data)]
        for _event_id, event_type, data in events:
            validate_event_data(event_type, data)
        # One event: its id is the webhook-id; a batch has an id of its own.
        if batched:
            assert headers["webhook-id"] not in {e[0] for e in events}
        else:
            assert headers["webhook-id"] == events[0][0]
        with self.lock:
            for event_id, event_type, _data in events:
                self.received.append(
                    Received(headers["webhook-id"], event_id, event_type, time.time(), headers, body)
                )

    def event_ids(self) -> list[str]:
        with self.lock:
            return [r.event_id for r in self.received]


@contextmanager
def running_receiver(tls: TlsFiles, **kwargs: Any) -> Iterator[Receiver]:
    receiver = Receiver(tls, **kwargs)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


# Workers ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    """Settings shared by the test process and its worker processes."""

    database_url: str
    broker_url: str
    tmp: Path
    tls: TlsFiles
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    metrics_port: int = 0

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUNKLINE_")}
        env.update(self.settings_env())
        env.update(extra)
        return env

    def settings_env(self) -> dict[str, str]:
        return {
            "TRUNKLINE_DATA_DIR": str(self.tmp / "data"),
            "TRUNKLINE_DATABASE_URL": self.database_url,
            "TRUNKLINE_SECRETS_KEYS": TEST_SECRETS_KEYS,
            "TRUNKLINE_BROKER_URL": self.broker_url,
            "TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
            "TRUNKLINE_WEBHOOK_CA_BUNDLE": str(self.tls.ca_file),
            "TRUNKLINE_WEBHOOK_TIMEOUT_SECONDS": "2",
            "TRUNKLINE_WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1",
            "TRUNKLINE_EVENTS_VISIBILITY_TIMEOUT_SECONDS": "5",
            "TRUNKLINE_EVENTS_UNACKED_RESTORE_INTERVAL_SECONDS": "1",
            "TRUNKLINE_EVENTS_RETRY_BASE_SECONDS": "0.2",
            "TRUNKLINE_EVENTS_RETRY_MAX_SECONDS": "1",
            "TRUNKLINE_EVENTS_DISPATCH_INTERVAL_SECONDS": "0.05",
            "TRUNKLINE_EVENTS_SCHEDULE_INTERVAL_SECONDS": "0.05",
            "TRUNKLINE_EVENTS_DELIVERY_CONCURRENCY": "8",
            "TRUNKLINE_PUBLIC_ENDPOINT": "https://127.0.0.1:1/",
            "TRUNKLINE_LOG_LEVEL": "WARNING",
            "TRUNKLINE_LOG_JSON": "true",
        }

    def start_worker(self, *args: str, name: str | None = None) -> subprocess.Popen[bytes]:
        name = name or f"w{len(self.workers)}"
        log = (self.tmp / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "worker", f"--hostname={name}@test", *args],
            env=self.env(),
            cwd=str(REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(process)
        return process

    def kill_worker(self, process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        if process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(5)
        self.workers.clear()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("w*.log")))


def make_tls(tmp: Path) -> TlsFiles:
    return ensure_local_tls(tmp / "tls", ["localhost"])
