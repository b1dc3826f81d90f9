"""Structured logs with request, resource, message and call ids bound as context.

On a terminal they are human-readable coloured lines; otherwise (a container, systemd, a file)
JSON lines. ``TRUNKLINE_LOG_FORMAT`` (auto | json | console) chooses; the older
``TRUNKLINE_LOG_JSON=true|false`` still does too. Logs go to stderr, so a command's own output
on stdout stays clean; commands that are not long-running roles log warnings and errors only
(:func:`quiet_for_commands`) unless ``TRUNKLINE_LOG_LEVEL`` says otherwise.
"""

from __future__ import annotations

import logging
import os
import sys
from enum import StrEnum
from typing import Any, TextIO

import structlog


class LogFormat(StrEnum):
    AUTO = "auto"  # console on a terminal, JSON otherwise
    JSON = "json"
    CONSOLE = "console"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record comes (a test's capture,
    a redirected stream), not the one that was current when logging was configured."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def json_output(log_format: str | None = None, legacy_json: str | bool | None = None) -> bool:
    """Whether logs are JSON lines: by ``log_format``, else the older ``log_json`` switch, else
    JSON unless stderr is a terminal."""
    chosen = (log_format or "").strip().lower()
    if chosen == LogFormat.JSON:
        return True
    if chosen == LogFormat.CONSOLE:
        return False
    if chosen not in ("", LogFormat.AUTO):
        raise ValueError(f"TRUNKLINE_LOG_FORMAT must be auto, json or console, not {log_format!r}")
    if isinstance(legacy_json, bool):
        return legacy_json
    if legacy_json is not None and legacy_json.strip():
        return legacy_json.strip().lower() not in ("false", "0", "no", "off")
    return not sys.stderr.isatty()


def json_output_from_environment() -> bool:
    return json_output(os.environ.get("TRUNKLINE_LOG_FORMAT"), os.environ.get("TRUNKLINE_LOG_JSON"))


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    """Route stdlib and structlog records to stderr; ``json`` None: as the environment says."""
    if json is None:
        json = json_output_from_environment()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        # filter_by_level first: an event below the level is dropped before the processors run
        # (without it, every request's log line was stamped and merged even at WARNING)
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json else []),
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log duplicates our request log line; its error log stays.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic narrates every plugin it loads at INFO; migrations themselves still log at WARNING+.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


def quiet_for_commands() -> None:
    """A command that is not a long-running role (``trunkline resources list``, ``numbers
    import``) logs warnings and errors only, unless ``TRUNKLINE_LOG_LEVEL`` is set."""
    if not os.environ.get("TRUNKLINE_LOG_LEVEL"):
        logging.getLogger().setLevel(logging.WARNING)
