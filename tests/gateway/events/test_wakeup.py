"""The dispatcher's wake-up: a prompt event's commit wakes it at once on PostgreSQL; a bulk
event, an uncommitted one, or SQLite leave it to its poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.db import Database
from gateway.core.migrate import upgrade
from gateway.events.service import publish
from gateway.events.wakeup import DispatcherWakeup
from gateway.resources.service import create_resource
from tests.support.postgres import empty_all_tables


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    empty_all_tables(database)
    database.dispose()


def _publish_later(
    database: Database, resource_id: str, *, prompt: bool, commit: bool = True
) -> threading.Thread:
    def run() -> None:
        time.sleep(0.2)
        with database.sessionmaker() as session, session.begin() as transaction:
            publish(
                session, resource_id=resource_id, event_type="Test.Event", subject="s", data={}, prompt=prompt
            )
            if not commit:
                transaction.rollback()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("prompt", "commit", "woken"), [(True, True, True), (False, True, False), (True, False, False)]
)
def test_only_a_committed_prompt_event_wakes_the_dispatcher(
    postgres: Database, postgres_url: str, prompt: bool, commit: bool, woken: bool
) -> None:
    with postgres.session() as session:
        resource_id = create_resource(session, "wake", "https://gateway.test/").id
    wakeup = DispatcherWakeup(postgres_url, threading.Event())
    try:
        assert wakeup.wait(0.05) is False  # listening from here on; nothing yet
        publisher = _publish_later(postgres, resource_id, prompt=prompt, commit=commit)
        started = time.monotonic()
        assert wakeup.wait(3.0) is woken
        waited = time.monotonic() - started
        publisher.join()
    finally:
        wakeup.close()
    if woken:
        assert waited < 2.0  # at the commit (0.2 s in), not at the end of the 3 s wait
    else:
        assert waited >= 2.9


def test_sqlite_has_no_wakeup_and_waits_the_poll_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'poll.db'}"
    upgrade(Database(url).engine)
    stop = threading.Event()
    wakeup = DispatcherWakeup(url, stop)
    started = time.monotonic()
    assert wakeup.wait(0.3) is False
    assert time.monotonic() - started >= 0.29
    stop.set()  # a stopping dispatcher does not wait
    started = time.monotonic()
    wakeup.wait(5.0)
    assert time.monotonic() - started < 1.0
