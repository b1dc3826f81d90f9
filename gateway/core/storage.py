"""The storage every process needs before it starts: the data dir, and the schema at its newest migration."""

from __future__ import annotations

from gateway.core.settings import Settings


def prepare_storage(settings: Settings) -> None:
    """Create the data dir and bring the schema to the newest migration."""
    from gateway.core.db import make_engine
    from gateway.core.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
