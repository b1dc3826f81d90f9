"""Trunkline's long-running processes ("roles"): the one list of what runs and where it begins.

Each role is a ``trunkline`` command (gateway.cli) whose body is the role's entry point;
``trunkline up`` (gateway.supervisor) runs the supervised ones as child processes. Entry points
are named by module path and imported only when a role starts, so reading this list imports
nothing heavy (the SMPP worker must not import FastAPI).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast


@dataclass(frozen=True)
class EntryPoint:
    """A function named by its module path: ``module:function``."""

    module: str
    function: str

    def load(self) -> Callable[..., None]:
        """Import the module and return the function."""
        target = getattr(importlib.import_module(self.module), self.function)
        if not callable(target):
            raise TypeError(f"{self} is not callable")
        return cast(Callable[..., None], target)

    def __str__(self) -> str:
        return f"{self.module}:{self.function}"


@dataclass(frozen=True)
class Role:
    """One long-running process.

    ``name`` is how logs and ``trunkline up`` call it; ``command`` is the ``trunkline``
    sub-command that runs it; ``supervised``: ``trunkline up`` starts it; ``metrics_port`` is the
    port its ``--metrics-port`` takes in infra/ (compose.yaml, prometheus.yml), None where the
    role has no metrics server of its own (the API serves ``/metrics`` on its HTTPS port).
    """

    name: str
    command: str
    entry_point: EntryPoint
    supervised: bool
    metrics_port: int | None = None


API = Role("api", "api", EntryPoint("gateway.server", "serve_api"), supervised=True)
WORKER = Role(
    "worker", "worker", EntryPoint("gateway.events.worker", "run_worker"), supervised=True, metrics_port=9464
)
SMPP = Role("smpp", "smpp", EntryPoint("sms.worker.main", "run_smpp"), supervised=True, metrics_port=9465)
SIP = Role(
    "sip",
    "sip",
    EntryPoint("sip.control.process", "run_sip_process"),
    supervised=True,
    metrics_port=9466,
)
UP = Role("up", "up", EntryPoint("gateway.supervisor", "run_local"), supervised=False)

ROLES: tuple[Role, ...] = (API, WORKER, SMPP, SIP, UP)


def supervised_roles() -> tuple[Role, ...]:
    """The roles ``trunkline up`` runs, in the order it starts them."""
    return tuple(role for role in ROLES if role.supervised)
