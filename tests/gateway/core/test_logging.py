"""gateway.core.logging: JSON lines off a terminal, readable lines on one, or as the setting says."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from gateway.core.logging import configure_logging, json_output, quiet_for_commands


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert json_output("json") is True
    assert json_output("console") is False
    assert json_output(None, "false") is False
    assert json_output("auto", True) is True
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert json_output() is True
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert json_output("auto") is False
    with pytest.raises(ValueError, match="TRUNKLINE_LOG_FORMAT"):
        json_output("yaml")


def test_logs_go_to_the_current_stderr_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("INFO", json=True)
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    structlog.get_logger("trunkline.test").info("hello", thing=1)
    line = json.loads(captured.getvalue().strip().splitlines()[-1])
    assert line["event"] == "hello"
    assert line["thing"] == 1

    configure_logging("INFO", json=False)
    readable = io.StringIO()
    monkeypatch.setattr(sys, "stderr", readable)
    structlog.get_logger("trunkline.test").info("hello again", thing=2)
    text = readable.getvalue()
    assert "hello again" in text
    assert "thing=2" in text
    assert not text.lstrip().startswith("{")


def test_commands_log_warnings_only_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("INFO", json=True)
    quiet_for_commands()
    assert logging.getLogger().level == logging.WARNING
    configure_logging("DEBUG", json=True)
    monkeypatch.setenv("TRUNKLINE_LOG_LEVEL", "DEBUG")
    quiet_for_commands()
    assert logging.getLogger().level == logging.DEBUG
