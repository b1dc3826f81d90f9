"""Run the node-smpp test SMSC (``tests/smsc/smsc.js``) as a subprocess and drive its control channel.

    with SmscProcess.start(system_id="test", password="secret") as smsc:
        smsc.configure(submit_latency_ms=5, receipts="immediate")
        ...  # bind to 127.0.0.1:smsc.port
        smsc.pdus("submit_sm")

The SMSC picks free ports itself and announces them on its first stdout line, so there is no
race between choosing a port and binding it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

SMSC_DIR = Path(__file__).resolve().parent.parent / "smsc"
SMSC_SCRIPT = SMSC_DIR / "smsc.js"
START_TIMEOUT = 10.0

ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RSYSERR = 0x08
ESME_RINVDSTADR = 0x0B


class SmscUnavailable(RuntimeError):
    """node or the SMSC's npm packages are missing (run ``scripts/bootstrap.sh --dev``)."""


def smsc_available() -> str | None:
    """Why the SMSC cannot run here, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (SMSC_DIR / "node_modules" / "smpp").is_dir():
        return "tests/smsc/node_modules is missing: run `npm ci --prefix tests/smsc`"
    return None


@dataclass
class SmscProcess:
    process: subprocess.Popen[str]
    host: str
    port: int
    control_port: int
    system_id: str
    password: str
    _stderr: list[str] = field(default_factory=list)

    # lifecycle -----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        system_id: str = "test",
        password: str = "secret",
        tls: tuple[Path, Path] | None = None,
        port: int = 0,
        **config: Any,
    ) -> SmscProcess:
        """Start the SMSC (over TLS with ``tls=(key_pem, cert_pem)``; on ``port``, or a free one),
        then apply ``config``."""
        reason = smsc_available()
        if reason:
            raise SmscUnavailable(reason)
        env = dict(os.environ, SMSC_SYSTEM_ID=system_id, SMSC_PASSWORD=password)
        if tls is not None:
            env.update(SMSC_TLS_KEY=str(tls[0]), SMSC_TLS_CERT=str(tls[1]))
        process = subprocess.Popen(
            ["node", str(SMSC_SCRIPT), "--port", str(port), "--control-port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        ready: dict[str, Any] = {}

        def read_ready() -> None:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line:
                ready.update(json.loads(line))

        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if ready.get("event") != "ready":
            process.kill()
            _, err = process.communicate(timeout=5)
            raise SmscUnavailable(f"the SMSC did not start within {START_TIMEOUT}s: {err.strip()}")
        ports = int(ready["smpp_port"]), int(ready["control_port"])
        smsc = cls(process, "127.0.0.1", ports[0], ports[1], system_id, password)
        threading.Thread(target=smsc._drain_stderr, daemon=True).start()
        if config:
            smsc.configure(**config)
        return smsc

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._stderr.append(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SmscProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # control channel -----------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"SMSC control {method} {path}: {exc.code} {exc.read().decode()}") from exc

    def pdus(self, command: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Every PDU the SMSC received (optionally of one command), oldest first."""
        query = f"?since={since}" + (f"&command={command}" if command else "")
        result: list[dict[str, Any]] = self._call("GET", "/pdus" + query)
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def counter(self, name: str) -> int:
        return int(self.stats()["counters"][name])

    def configure(self, **config: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/config", config)
        return result

    def fault(self, status: int, count: int = 0, share: float = 0.0) -> None:
        """Answer the next ``count`` submits (or a ``share`` of all) with ``status``; 0 clears."""
        self._call("POST", "/fault", {"status": status, "count": count, "share": share})

    def mo(
        self,
        source: str,
        destination: str,
        short_message: bytes,
        *,
        data_coding: int = 0,
        esm_class: int = 0,
        tlvs: dict[str, Any] | None = None,
        session: int | None = None,
    ) -> dict[str, Any]:
        """Send a mobile-originated deliver_sm; returns the client's resp (status, sequence)."""
        return self._deliver("/mo", source, destination, short_message, data_coding, esm_class, tlvs, session)

    def data_sm(
        self,
        source: str,
        destination: str,
        payload: bytes = b"",
        *,
        data_coding: int = 0,
        tlvs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        merged = dict(tlvs or {})
        if payload:
            merged["message_payload"] = payload.hex()
        return self._deliver("/data_sm", source, destination, b"", data_coding, 0, merged, None)

    def _deliver(
        self,
        path: str,
        source: str,
        destination: str,
        short_message: bytes,
        data_coding: int,
        esm_class: int,
        tlvs: dict[str, Any] | None,
        session: int | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "source_addr": source,
            "source_addr_ton": 1,
            "source_addr_npi": 1,
            "destination_addr": destination,
            "dest_addr_ton": 1,
            "dest_addr_npi": 1,
            "short_message_hex": short_message.hex(),
            "data_coding": data_coding,
            "esm_class": esm_class,
            "tlvs": tlvs or {},
        }
        if session is not None:
            body["session"] = session
        result: dict[str, Any] = self._call("POST", path, body)
        return result

    def receipt(self, message_id: str, stat: str = "DELIVRD", err: str = "000") -> dict[str, Any]:
        body = {"message_id": message_id, "stat": stat, "err": err}
        result: dict[str, Any] = self._call("POST", "/receipt", body)
        return result

    def enquire_link(self) -> list[dict[str, Any]]:
        """Send enquire_link on every bound session; the resps (or timeouts)."""
        result: list[dict[str, Any]] = self._call("POST", "/enquire_link")
        return result

    def unbind(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("POST", "/unbind")
        return result

    def drop(self) -> list[int]:
        """Destroy every client connection at once, without unbind."""
        return list(self._call("POST", "/drop")["dropped"])

    def reset(self) -> None:
        self._call("POST", "/reset")

    def bound_sessions(self) -> list[dict[str, Any]]:
        return [s for s in self.stats()["sessions"] if s["bound"]]

    def wait_for(self, predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> Any:
        """Poll ``predicate(self)`` until it returns something truthy; raise on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"SMSC condition not met within {timeout}s")
            time.sleep(interval)
