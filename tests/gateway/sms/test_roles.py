"""``trunkline up`` runs the SMPP process; ``trunkline smpp`` is a command."""

from __future__ import annotations

from typer.testing import CliRunner

from gateway.cli import app
from gateway.supervisor import local_roles


def test_up_runs_the_smpp_process() -> None:
    roles = {role.name: role.argv[3:] for role in local_roles()}
    assert roles["smpp"] == ["smpp"]


def test_smpp_command_has_its_subcommands() -> None:
    result = CliRunner().invoke(app, ["smpp", "--help"])
    assert result.exit_code == 0
    for name in ("add", "list", "route", "apply", "stats"):
        assert name in result.output
