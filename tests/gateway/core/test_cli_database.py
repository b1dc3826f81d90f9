"""The database of a one-shot command: migrated first, one transaction, ACS refusals as exits."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy import inspect, text

from gateway.core.cli_database import command_session, migrated_database
from gateway.core.errors import NotFound


def test_a_fresh_database_is_migrated_before_the_command_sees_it(tmp_path: Path) -> None:
    database = migrated_database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        assert "resources" in inspect(database.engine).get_table_names()
    finally:
        database.dispose()


def test_an_acs_refusal_exits_with_the_commands_code_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"

    def refused_command() -> None:
        with command_session(url, error_code=2) as session:
            session.execute(text("CREATE TABLE scratch (n INTEGER)"))
            session.execute(text("INSERT INTO scratch VALUES (1)"))
            raise NotFound("No carrier named [bold]x[/bold].")

    with pytest.raises(typer.Exit) as exit_info:
        refused_command()
    assert exit_info.value.exit_code == 2
    assert "No carrier named [bold]x[/bold]." in capsys.readouterr().err  # printed as given
    with command_session(url) as session:
        assert "scratch" not in inspect(session.connection()).get_table_names()


def test_work_that_succeeds_is_committed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with command_session(url) as session:
        session.execute(text("CREATE TABLE scratch (n INTEGER)"))
        session.execute(text("INSERT INTO scratch VALUES (7)"))
    with command_session(url) as session:
        assert session.execute(text("SELECT n FROM scratch")).scalar_one() == 7
