"""The running local gateway, for the commands of another shell.

``trunkline up`` writes ``local-gateway.json`` in the default data dir: its pid, data dir,
endpoint and the webhook networks it allows. A command run without ``TRUNKLINE_DATA_DIR``
(``TRUNKLINE_DATABASE_URL``, ``TRUNKLINE_CONFIG_FILE``) reads it and works on that gateway's
data with its endpoint, so ``trunkline resources create`` writes connection strings naming the
port ``up`` listens on, and says so when that is not the default one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.core.settings import DEFAULT_API_PORT, default_data_dir, home_data_dir, set_command_defaults

STATE_FILE_NAME = "local-gateway.json"
# Any of these set: the command is told where its data is, and the state file is not read.
EXPLICIT_LOCATION = ("TRUNKLINE_DATA_DIR", "TRUNKLINE_DATABASE_URL", "TRUNKLINE_CONFIG_FILE")
# Loopback: what local mode lets webhooks reach unless TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS says.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class LocalGateway:
    """What ``trunkline up`` tells the commands of other shells about itself."""

    pid: int
    data_dir: Path
    endpoint: str
    api_host: str
    api_port: int
    webhook_allowed_networks: tuple[str, ...]
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "dataDir": str(self.data_dir),
            "endpoint": self.endpoint,
            "apiHost": self.api_host,
            "apiPort": self.api_port,
            "webhookAllowedNetworks": list(self.webhook_allowed_networks),
            "startedAt": self.started_at,
        }

    @classmethod
    def of_json(cls, data: Mapping[str, Any]) -> LocalGateway:
        return cls(
            pid=int(data["pid"]),
            data_dir=Path(str(data["dataDir"])),
            endpoint=str(data["endpoint"]),
            api_host=str(data["apiHost"]),
            api_port=int(data["apiPort"]),
            webhook_allowed_networks=tuple(str(n) for n in data.get("webhookAllowedNetworks", ())),
            started_at=str(data.get("startedAt", "")),
        )

    @property
    def running(self) -> bool:
        """Whether the ``up`` process that wrote this still runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's process of that id
        return True

    def settings_values(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """Settings taken from the running gateway, for those the environment does not set."""
        values: dict[str, Any] = {"data_dir": self.data_dir}
        if "TRUNKLINE_API_HOST" not in environ:
            values["api_host"] = self.api_host
        if "TRUNKLINE_API_PORT" not in environ:
            values["api_port"] = self.api_port
        if "TRUNKLINE_PUBLIC_ENDPOINT" not in environ:
            values["public_endpoint"] = self.endpoint
        if "TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS" not in environ:
            values["webhook_allowed_networks"] = list(self.webhook_allowed_networks)
        return values


def state_file() -> Path | None:
    """Where ``up`` leaves its state: the default data dir under HOME (or XDG_DATA_HOME); None
    without a usable HOME (no file is then left in the current directory)."""
    home = home_data_dir()
    return None if home is None else home / STATE_FILE_NAME


def write_local_gateway(gateway: LocalGateway) -> Path | None:
    """Record ``gateway`` for other shells; the file written, None when there is no HOME."""
    path = state_file()
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(gateway.as_json(), indent=2) + "\n")
    os.replace(partial, path)
    return path


def read_local_gateway() -> LocalGateway | None:
    path = state_file()
    if path is None or not path.is_file():
        return None
    try:
        return LocalGateway.of_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class CommandTarget:
    """Where an offline command works: the settings it takes from ``up``, and what to tell the
    user about it (None when it is the obvious default)."""

    values: dict[str, Any]
    note: str | None


def command_target(environ: Mapping[str, str]) -> CommandTarget:
    """What a command run with ``environ`` works on, and the note that says so when needed."""
    if any(environ.get(name) for name in EXPLICIT_LOCATION):
        return CommandTarget({}, None)
    gateway = read_local_gateway()
    if gateway is None:
        return CommandTarget({}, default_data_dir_and_reason()[1])
    values = gateway.settings_values(environ)
    usual = gateway.data_dir == default_data_dir() and gateway.api_port == DEFAULT_API_PORT
    if usual:
        return CommandTarget(values, None)
    state = f"pid {gateway.pid}" if gateway.running else f"pid {gateway.pid}, not running now"
    return CommandTarget(
        values,
        f"using the gateway of `trunkline up` ({state}): data dir {gateway.data_dir}, endpoint "
        f"{values.get('public_endpoint', gateway.endpoint)} (from {state_file()}; set "
        "TRUNKLINE_DATA_DIR to use another)",
    )


def default_data_dir_and_reason() -> tuple[Path, str | None]:
    """The default data dir, and why it is not under HOME when it is not (else None)."""
    path = default_data_dir()
    if home_data_dir() is not None:
        return path, None
    return path, (
        f"HOME is not set or not a writable directory, so the data dir is {path} "
        "(trunkline-data in the current directory); set TRUNKLINE_DATA_DIR to choose one"
    )


def use_local_gateway(environ: Mapping[str, str] | None = None) -> str | None:
    """Make this command's settings those of the running local gateway where the environment
    does not say otherwise; returns the note to show (None: nothing worth saying)."""
    target = command_target(os.environ if environ is None else environ)
    set_command_defaults(target.values)
    return target.note
