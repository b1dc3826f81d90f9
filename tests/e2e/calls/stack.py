"""The voice end-to-end stack, all real processes: ``trunkline api`` (HTTPS), ``trunkline worker``
(events, on a private redis-server), ``trunkline sip`` (one pjsua2 worker facing the carrier with
``--edge none``, or Kamailio in front of several with ``--edge kamailio``), PostgreSQL, and an
https app: a webhook receiver that answers IncomingCall events with the official
``CallAutomationClient`` and records the callbacks, each checked against the gateway's OpenID
configuration and JWKS. SIPp, the carrier, is the tests' (or bench/calls.py's) own.

``running_voice_stack`` builds one; tests/e2e/calls/conftest.py and bench/calls.py's platform
mode both use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
from azure.communication.callautomation import CallAutomationClient
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent
from prometheus_client.parser import text_string_to_metric_families

from gateway.core.cli_database import migrated_database
from gateway.core.db import Database
from gateway.core.sealed_columns import keyring_of, use_keyring
from gateway.core.settings import Settings
from gateway.core.tls import TlsFiles
from gateway.events import builder, subscriptions
from gateway.events.models import SubscriptionStatus
from gateway.events.runtime import limits_from_settings, policy_from_settings
from tests.e2e.helpers import fast_events_env, free_port, strong_secret, trunkline_env
from tests.e2e.stack import ProcessStack
from tests.gateway.events.harness import RedisServer, make_tls, wait_until
from tests.sip.support import free_udp_block
from tests.support.postgres import throwaway_database
from tests.support.secrets_keys import TEST_SECRETS_KEYS
from tests.support.voice_numbers import own_voice_number

NUMBER = "+14255550123"  # the app's number, inbound calling
OTHER_NUMBER = "+14255550199"  # purchased, calling none
CALLER = "+15557770000"  # the app's caller id, outbound calling (tests/sip/scenarios/callee.xml)
UNHEARD_NUMBER = "+14255550155"  # inbound calling, but no subscription hears of its calls


@dataclass
class App:
    """The tenant's app: webhook for IncomingCall, callback URI for call events."""

    tls: TlsFiles
    issuer: str = ""
    ca_file: Path | None = None
    client: CallAutomationClient | None = None
    on_incoming: Callable[[dict[str, Any]], None] | None = None
    # each callback as it arrives, with its time.time() (called on the webhook's request thread)
    on_call_event: Callable[[CloudEvent, float], None] | None = None
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # GET path -> (type, body)
    port: int = field(default_factory=free_port)
    incoming: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[CloudEvent] = field(default_factory=list)
    callback_times: list[float] = field(default_factory=list)  # time.time() each callback arrived
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self._jwks: dict[str, Any] | None = None

    @property
    def events_url(self) -> str:
        return f"https://localhost:{self.port}/events"

    @property
    def callback_url(self) -> str:
        return f"https://localhost:{self.port}/callbacks"

    def start(self) -> None:
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # the app's own media (FileSource prompts)
                found = app.files.get(self.path)
                if found is None:
                    self._answer(404)
                    return
                self.send_response(200)
                self.send_header("content-type", found[0])
                self.send_header("content-length", str(len(found[1])))
                self.end_headers()
                self.wfile.write(found[1])

            def do_OPTIONS(self) -> None:
                self.send_response(200)
                self.send_header("WebHook-Allowed-Origin", self.headers.get("webhook-request-origin", ""))
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    if self.path == "/events":
                        answer = app.on_event(self.headers.get("aeg-event-type", ""), body)
                    else:
                        app.on_callback(self.headers.get("authorization", ""), body)
                        answer = b""
                except Exception as exc:
                    app.errors.append(repr(exc))
                    self._answer(400, repr(exc).encode())
                    return
                self._answer(200, answer)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.tls.cert_file), str(self.tls.key_file))
        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def on_event(self, kind: str, body: bytes) -> bytes:
        received_at = time.time()
        items = json.loads(body)
        if kind == "SubscriptionValidation":
            return json.dumps({"validationResponse": items[0]["data"]["validationCode"]}).encode()
        for item in items:
            event = EventGridEvent.from_dict(item)
            assert event.event_type == builder.INCOMING_CALL
            data = dict(event.data)
            data["_subject"] = event.subject
            data["_received_at"] = received_at
            with self.lock:
                self.incoming.append(data)
            if self.on_incoming is not None:
                # as an app does: answer from the webhook, off its response path
                threading.Thread(target=self.on_incoming, args=(data,), daemon=True).start()
        return b""

    def jwks(self) -> dict[str, Any]:
        if self._jwks is None:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            with urllib.request.urlopen(
                f"{self.issuer}/.well-known/openid-configuration", context=context
            ) as r:
                configuration = json.loads(r.read())
            assert configuration["issuer"] == self.issuer
            with urllib.request.urlopen(configuration["jwks_uri"], context=context) as r:
                self._jwks = json.loads(r.read())
        return self._jwks

    def on_callback(self, authorization: str, body: bytes) -> None:
        received_at = time.time()
        scheme, _, token = authorization.partition(" ")
        assert scheme == "Bearer", authorization
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(k for k in self.jwks()["keys"] if k["kid"] == kid)
        claims = jwt.decode(
            token, jwt.PyJWK(key).key, algorithms=["ES256"], issuer=self.issuer, options={"verify_aud": False}
        )
        assert claims["aud"]
        items = json.loads(body)
        assert isinstance(items, list)
        events = [CloudEvent.from_dict(item) for item in items]
        with self.lock:
            for event in events:
                self.callbacks.append(event)
                self.callback_times.append(received_at)
        if self.on_call_event is not None:
            for event in events:
                self.on_call_event(event, received_at)

    def callback_types(self, call_connection_id: str) -> list[str]:
        with self.lock:
            return [e.type for e in self.callbacks if e.data["callConnectionId"] == call_connection_id]


SipMetrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (sample name, labels) -> value


@dataclass
class VoiceStack(ProcessStack):
    tmp: Path
    env: dict[str, str]
    database: Database
    redis: RedisServer
    app: App
    port: int
    sip_port: int
    metrics_port: int
    edge: str = "none"
    workers: int = 1
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)

    def sip_metrics(self) -> SipMetrics:
        """The SIP process's Prometheus samples now (its metrics port)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def rtp_packets(self) -> dict[str, float]:
        """The SIP process's RTP counters, by direction."""
        return {
            dict(labels)["direction"]: value
            for (name, labels), value in self.sip_metrics().items()
            if name == "trunkline_sip_rtp_packets_total"
        }

    @property
    def status_file(self) -> Path:
        return Path(self.env["TRUNKLINE_DATA_DIR"]) / "sip-status.json"

    def sip_status(self) -> dict[str, Any]:
        """What ``trunkline sip`` last wrote: each worker's pid, port, calls."""
        return dict(json.loads(self.status_file.read_text()))


@contextlib.contextmanager
def running_voice_stack(
    tmp: Path,
    *,
    edge: str = "none",
    workers: int = 1,
    database_prefix: str = "trunkline_voice_e2e",
    extra_env: dict[str, str] | None = None,
    sip_args: tuple[str, ...] = (),
) -> Iterator[VoiceStack]:
    """Start the stack in ``tmp``; everything it started is stopped (by pid) on exit.

    ``edge="kamailio"`` runs ``trunkline sip --edge kamailio --workers N``: the carrier talks
    to Kamailio on ``sip_port`` and its dispatcher spreads the INVITEs over the workers.
    """
    tls = make_tls(tmp)
    with throwaway_database(database_prefix) as database_url:
        redis = RedisServer(tmp)
        app = App(tls)
        app.start()
        port = free_port()
        # One block for every UDP port of the SIP process, so that no two of its ranges, picked
        # apart, can overlap: the trunk-facing port, Kamailio's RPC port, the workers' SIP
        # ports (behind Kamailio), 40 RTP ports per worker.
        behind = workers if edge == "kamailio" else 0
        sip_port = free_udp_block(2 + behind + 40 * workers)
        metrics_port = free_port()
        env = trunkline_env(tmp / "data", port, strong_secret(), database_url=database_url)
        env.update(
            {
                **fast_events_env(redis.url, tls.ca_file),
                "TRUNKLINE_CALL_RING_TIMEOUT_SECONDS": "4",
                "TRUNKLINE_LOG_LEVEL": "INFO",
                "TRUNKLINE_LOG_JSON": "false",
                **(extra_env or {}),
            }
        )
        database = migrated_database(database_url)
        stack = VoiceStack(tmp, env, database, redis, app, port, sip_port, metrics_port, edge, workers)
        saved = {name: os.environ.get(name) for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
        try:
            stack.start("api", "api", "--host", "127.0.0.1", "--port", str(port))
            created = stack.cli("resources", "create", f"voice-{edge}", "--json")
            assert created.returncode == 0, created.stderr
            stack.resource = json.loads(created.stdout)
            own_voice_number(database, stack.resource["id"], NUMBER, "inbound+outbound")
            own_voice_number(database, stack.resource["id"], OTHER_NUMBER, "none")
            own_voice_number(database, stack.resource["id"], CALLER, "outbound")
            own_voice_number(database, stack.resource["id"], UNHEARD_NUMBER, "inbound")
            for args in (
                ("carriers", "add", "voice-test-carrier", "--kind", "sip"),
                ("sip", "trunk", "add", "carrier1", "--carrier", "voice-test-carrier", "--host", "127.0.0.1"),
            ):
                done = stack.cli(*args)
                assert done.returncode == 0, (args, done.stdout, done.stderr)
            settings = Settings(
                webhook_allowed_networks=["127.0.0.0/8"],
                data_dir=tmp / "data",
                database_url=database_url,
                secrets_keys=TEST_SECRETS_KEYS,
            )
            # the subscription's secret is sealed with the processes' key (a package fixture runs
            # before the per-test environment sets it; the tests' own is the same key)
            use_keyring(keyring_of(settings))
            with database.session() as session:
                subscription = subscriptions.create_subscription(
                    session,
                    stack.resource["id"],
                    subscriptions.SubscriptionSpec(
                        app.events_url, [builder.INCOMING_CALL], subject_ends_with=f"/recipient/4:{NUMBER}"
                    ),
                    policy_from_settings(settings),
                    limits_from_settings(settings),
                )
            stack.start("worker", "worker")
            placement: tuple[str, ...]
            if edge == "kamailio":
                placement = (
                    "--worker-port", str(sip_port + 2),
                    "--rpc-port", str(sip_port + 1),
                    "--rtp-port", str(sip_port + 2 + workers),
                )  # fmt: skip
            else:
                placement = ("--rtp-port", str(sip_port + 2))
            stack.start(
                "sip", "sip", "--edge", edge, "--workers", str(workers), "--listen", f"127.0.0.1:{sip_port}",
                *placement, "--metrics-port", str(metrics_port),
                "--media-poll-seconds", "1",  # the tests watch RTP counters grow during short calls
                *sip_args,
            )  # fmt: skip

            def active() -> bool:
                with database.session() as session:
                    found = subscriptions.get_subscription(session, subscription.id)
                    return found.status == SubscriptionStatus.ACTIVE

            def sip_up() -> bool:
                if stack.processes["sip"].poll() is not None:
                    raise AssertionError(f"trunkline sip exited:\n{stack.log('sip')}")
                if not stack.status_file.exists():
                    return False
                status = stack.sip_status()
                return len(status["workers"]) == workers and all(w["up"] for w in status["workers"])

            wait_until(active, 30, what="the subscription to validate")
            wait_until(stack.ca_file.exists, 20, what="the API's CA")
            wait_until(sip_up, 60 + 0.5 * workers, what=f"trunkline sip ({workers} workers) to start")
            app.issuer = stack.endpoint.rstrip("/")
            app.ca_file = stack.ca_file
            os.environ["REQUESTS_CA_BUNDLE"] = str(stack.ca_file)
            os.environ["SSL_CERT_FILE"] = str(stack.ca_file)
            app.client = CallAutomationClient.from_connection_string(
                stack.resource["connectionString"], retry_total=0
            )
            yield stack
        finally:
            # Put back what was there, but only if still ours: a session fixture
            # (tests/e2e/conftest.py's trunkline) may have set its own CA since.
            for name, value in saved.items():
                if os.environ.get(name) == str(stack.ca_file):
                    if value is None:
                        del os.environ[name]
                    else:
                        os.environ[name] = value
            stack.stop_all()
            app.stop()
            redis.stop()
            database.dispose()
