"""The Kamailio edge at run time: the process in a temp dir, and its JSON-RPC datagram socket.

``KamailioEdge`` renders the config (``sip.edge``) into its own directory, starts
``kamailio -DD -E`` (foreground, log to stderr) and waits until RPC answers. ``set_worker``
is the pool's edge hook: it marks a worker inactive when full or dead and active when free.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sip.edge import (
    TEMPLATE,
    Destination,
    EdgeConfig,
    EdgeTls,
    dialogs_of,
    render_config,
    render_dispatcher_list,
    render_tls_config,
    rpc_request,
    rpc_set_state,
)
from sip.worker.ledger import EdgeState

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
# With SIP TLS each Kamailio process loads the CA list into shared memory: the system's
# (ca-certificates, ~140 CAs) took 7 s with 2 children here.
TLS_START_TIMEOUT = 60.0
RPC_TIMEOUT = 2.0
SET_STATE_TIMEOUT = 0.5  # the pool's reader thread waits for it


def _die_with_parent() -> list[str]:
    """A prefix making Kamailio get SIGTERM when the process that started it dies.

    Without it a killed `trunkline sip` leaves Kamailio holding the trunk port. Linux's
    parent-death signal follows the starting *thread*, so only from the main thread; setpriv
    (util-linux) sets it before exec, where a preexec_fn could deadlock beside our threads.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "TERM", "--"]


class KamailioError(RuntimeError):
    """Kamailio is missing, did not start, or answered an RPC with an error."""


def kamailio_binary() -> str:
    path = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
    if path is None:
        raise KamailioError("kamailio is not installed (Debian package `kamailio`)")
    return path


class KamailioEdge:
    """One Kamailio process in front of ``workers``; ``start``/``stop`` by the owner."""

    def __init__(
        self,
        workers: list[Destination],
        *,
        listen_host: str,
        listen_port: int,
        rpc_port: int,
        directory: Path | None = None,
        template: Path = TEMPLATE,
        children: int = 4,
        tls_port: int | None = None,
        tls: EdgeTls | None = None,
    ) -> None:
        if (tls_port is None) != (tls is None):
            raise ValueError("SIP TLS at the edge needs both a port and a certificate")
        self.workers = list(workers)
        self._own_dir = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="trunkline-kamailio-"))
        self.config = EdgeConfig(
            listen_host=listen_host,
            listen_port=listen_port,
            rpc_host="127.0.0.1",
            rpc_port=rpc_port,
            dispatcher_list=str(self.directory / "dispatcher.list"),
            children=children,
            tls_port=tls_port,
            tls_config=str(self.directory / "tls.cfg") if tls is not None else "",
        )
        self.tls = tls
        self.template = template
        self.process: subprocess.Popen[bytes] | None = None
        self._ids = itertools.count(1)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(RPC_TIMEOUT)
        # One RPC at a time on the socket: the pool calls set_worker from whichever thread freed
        # or took a slot (its reader, the SIP process's event lanes, the command consumer), and
        # two callers waiting on one socket took each other's answers and timed out.
        self._rpc_lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"{self.config.listen_host}:{self.config.listen_port}"

    def start(self, timeout: float | None = None) -> None:
        if timeout is None:
            timeout = START_TIMEOUT if self.tls is None else TLS_START_TIMEOUT
        binary = kamailio_binary()
        Path(self.config.dispatcher_list).write_text(render_dispatcher_list(self.workers))  # current a/i
        if self.tls is not None:
            (self.directory / "tls.cfg").write_text(render_tls_config(self.tls))
        cfg = self.directory / "kamailio.cfg"
        cfg.write_text(render_config(self.config, self.template.read_text()))
        run_dir = self.directory / "run"
        run_dir.mkdir(exist_ok=True)
        check = subprocess.run(  # noqa: S603 - our binary, our generated file
            [binary, "-c", "-f", str(cfg)], capture_output=True, timeout=30, check=False
        )
        if check.returncode != 0:
            raise KamailioError(
                f"kamailio rejects its config: {check.stderr.decode(errors='replace')[-2000:]}"
            )
        self.log_path = self.directory / "kamailio.log"
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(  # noqa: S603 - our binary, our generated file
                [
                    *_die_with_parent(),
                    binary,
                    "-DD",
                    "-E",
                    "-f",
                    str(cfg),
                    "-Y",
                    str(run_dir),
                    "-m",
                    "64",
                    "-M",
                    "8",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KamailioError(f"kamailio exited with {self.process.returncode}: {self.log_tail()}")
            try:
                self.rpc("core.version", [], timeout=0.2)
                return
            except (TimeoutError, OSError):
                time.sleep(0.1)
        self.stop()
        raise KamailioError(f"kamailio RPC did not answer within {timeout:.0f}s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._sock.close()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except (OSError, AttributeError):
            return ""

    # RPC ----------------------------------------------------------------------------------------

    def rpc(self, method: str, params: list[object], timeout: float = RPC_TIMEOUT) -> Any:
        return self._call(rpc_request(method, params, next(self._ids)), timeout)

    def set_worker(self, change: EdgeState) -> None:
        """The pool's edge hook: dispatcher state a/i of worker ``change.worker``.

        Before ``start`` (the pool starts first) the state is only remembered: the dispatcher
        list is written with it.
        """
        worker = dataclasses.replace(self.workers[change.worker], active=change.active)
        self.workers[change.worker] = worker
        if self.process is not None and self.process.poll() is None:
            self._call(rpc_set_state(worker, change.active, next(self._ids)), SET_STATE_TIMEOUT)

    def end_calls_of(self, worker: int) -> int:
        """BYE both ends of every answered dialog of a (dead) worker; how many were ended.

        The carrier would otherwise keep a call whose worker is gone until its own timers
        notice. Unanswered INVITEs end on their own (Kamailio's transaction timers).
        """
        dialogs = self.rpc("dlg.list", []) or []
        refs = dialogs_of(self.workers[worker], dialogs)
        for ref in refs:
            try:
                self.rpc("dlg.end_dlg", [ref.h_entry, ref.h_id])
            except KamailioError as exc:  # ended meanwhile
                log.info("dialog %s of worker %d: %s", ref, worker, exc)
        return len(refs)

    def dispatcher_states(self) -> dict[str, str]:
        """Worker URI -> dispatcher flags as Kamailio reports them (e.g. 'AP', 'IP')."""
        result = self.rpc("dispatcher.list", [])
        states: dict[str, str] = {}
        for record in result.get("RECORDS", []):
            for target in record.get("SET", {}).get("TARGETS", []):
                dest = target["DEST"]
                states[dest["URI"]] = dest["FLAGS"]
        return states

    def _call(self, request: bytes, timeout: float) -> Any:
        wanted = json.loads(request)["id"]
        with self._rpc_lock:
            deadline = time.monotonic() + timeout
            self._sock.settimeout(timeout)
            self._sock.sendto(request, (self.config.rpc_host, self.config.rpc_port))
            while True:
                self._sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = self._sock.recv(65536)
                reply = json.loads(data)
                if reply.get("id") != wanted:
                    continue  # a late answer to an earlier request
                if "error" in reply:
                    raise KamailioError(f"{json.loads(request)['method']}: {reply['error']}")
                return reply.get("result")
