"""Trunkline's API plane: ACS-compatible REST, operator admin API, Celery tasks and the CLI."""

__version__ = "0.1.0"
