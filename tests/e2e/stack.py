"""What the end-to-end stacks share: real ``trunkline`` role processes in a temp dir, their CLI,
their logs, and an HMAC-signing client to the API they serve."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.helpers import AcsHmacAuth, stop_process


class ProcessStack:
    """Mixed into a stack dataclass that has these fields."""

    tmp: Path
    env: dict[str, str]
    port: int
    processes: dict[str, subprocess.Popen[bytes]]
    resource: dict[str, Any]

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    @property
    def ca_file(self) -> Path:
        return Path(self.env["TRUNKLINE_DATA_DIR"]) / "tls" / "ca.pem"

    def start(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{role}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args],
            env=self.env,
            cwd=str(self.tmp),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[role] = process
        return process

    def stop_all(self) -> None:
        for process in self.processes.values():
            stop_process(process)
        self.processes.clear()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            env=self.env,
            cwd=str(self.tmp),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def log(self, role: str) -> str:
        path = self.tmp / f"{role}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def http(self, key: str | None = None) -> httpx.Client:
        """Signed with ``key``, by default the stack's resource's primary key."""
        return httpx.Client(
            base_url=self.endpoint,
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            auth=AcsHmacAuth(key or self.resource["primaryKey"]),
            timeout=30,
        )
