"""gateway.core.cli_output: tables whole in a pipe, readable on a terminal; errors as sentences."""

from __future__ import annotations

import io

import pytest
import typer
from rich.console import Console

from gateway.core.cli_output import fail, print_table

LONG = "+12025550100-with-a-long-tail-that-a-narrow-terminal-would-cut"


def test_a_pipe_gets_tab_separated_lines_with_every_value_whole() -> None:
    out = io.StringIO()
    print_table(("number", "note"), [(LONG, "a\tb\nc"), ("+1", None)], out=Console(file=out))
    assert out.getvalue().splitlines() == ["number\tnote", f"{LONG}\ta b c", "+1\t"]


def test_a_terminal_gets_a_table_that_wraps_instead_of_cutting() -> None:
    out = io.StringIO()
    print_table(("number", "carrier"), [(LONG, "acme")], out=Console(file=out, force_terminal=True, width=40))
    text = out.getvalue()
    assert "…" not in text
    assert "number" in text
    assert "-would-cut" in text  # folded over lines, all there


def test_fail_prints_the_message_as_is(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = fail("no [bold]markup[/bold] read", 2)
    assert isinstance(exit_, typer.Exit)
    assert exit_.exit_code == 2
    assert "no [bold]markup[/bold] read" in capsys.readouterr().err
