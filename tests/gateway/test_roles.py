"""gateway.roles is the one list of long-running processes: the CLI, ``up`` and infra/ follow it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from gateway import roles
from gateway.cli import app
from gateway.roles import ROLES, EntryPoint, Role
from gateway.supervisor import local_roles
from sip.worker.config import kamailio_available

INFRA = Path(__file__).resolve().parents[2] / "infra"


@pytest.mark.parametrize("role", ROLES, ids=lambda role: role.name)
def test_every_entry_point_resolves_to_a_callable(role: Role) -> None:
    assert callable(role.entry_point.load())


def test_an_entry_point_that_is_not_a_function_is_refused() -> None:
    with pytest.raises(TypeError, match=r"^gateway\.roles:ROLES is not callable$"):
        EntryPoint("gateway.roles", "ROLES").load()


def test_names_and_commands_are_unique() -> None:
    assert len({role.name for role in ROLES}) == len(ROLES)
    assert len({role.command for role in ROLES}) == len(ROLES)


def test_every_role_is_a_trunkline_command() -> None:
    commands: Any = typer.main.get_command(app)
    assert {role.command for role in ROLES} <= set(commands.commands)


NO_KAMAILIO = [] if kamailio_available() else ["--edge", "none"]


def test_up_supervises_the_supervised_roles_in_order() -> None:
    children = local_roles()
    assert [(child.name, child.argv) for child in children] == [
        ("api", [sys.executable, "-m", "gateway", "api"]),
        ("worker", [sys.executable, "-m", "gateway", "worker", "--metrics-port", "9464"]),
        ("smpp", [sys.executable, "-m", "gateway", "smpp", "--metrics-port", "9465"]),
        ("sip", [sys.executable, "-m", "gateway", "sip", "--metrics-port", "9466", *NO_KAMAILIO]),
    ]
    assert [child.name for child in children] == [role.name for role in roles.supervised_roles()]
    assert not roles.UP.supervised


def test_infra_scrapes_each_metrics_port() -> None:
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    prometheus = yaml.safe_load((INFRA / "prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    for role in ROLES:
        if role.metrics_port is None:
            continue
        command = compose["services"][role.name]["command"]
        assert command == ["trunkline", role.command, "--metrics-port", str(role.metrics_port)]
        assert f"127.0.0.1:{role.metrics_port}" in targets


def test_reading_the_roles_imports_no_entry_point() -> None:
    """Listing the roles must not import what they run (the SMPP worker must not load FastAPI)."""
    heavy = ("fastapi", "gateway.server", "gateway.sms", "gateway.events", "gateway.supervisor")
    code = f"import sys, gateway.roles; loaded = [m for m in {heavy!r} if m in sys.modules]; print(loaded)"
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert run.stdout.strip() == "[]"
