"""``trunkline up`` runs the SMPP process; ``trunkline smpp`` is a command."""

from __future__ import annotations

from typing import Any

import typer.main
from typer.testing import CliRunner

from gateway.cli import app
from gateway.supervisor import local_roles


def test_up_runs_the_smpp_process() -> None:
    roles = {role.name: role.argv[3:] for role in local_roles()}
    assert roles["smpp"] == ["smpp", "--metrics-port", "9465"]  # its own metrics, on its own port


def _subcommands(*path: str) -> dict[str, Any]:
    """The sub-commands of ``trunkline <path>``, from typer's command registry."""
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return dict(command.commands)


def _help_commands(output: str) -> list[str]:
    """The names in the Commands panel of a command's ``--help``."""
    panel = output.split("─ Commands ─", 1)[1]
    rows = [line[2:] for line in panel.splitlines() if line.startswith("│ ")]
    return [row.split()[0] for row in rows if not row.startswith(" ")]


def test_smpp_command_has_its_subcommands() -> None:
    assert sorted(_subcommands("smpp")) == ["add", "apply", "list", "remove", "route", "stats"]
    assert sorted(_subcommands("smpp", "route")) == ["add", "list"]
    result = CliRunner().invoke(app, ["smpp", "--help"])
    assert result.exit_code == 0
    assert _help_commands(result.output) == ["add", "list", "remove", "apply", "stats", "route"]
