"""The worker's own delivery threads (gateway.events.local): back-pressure and what a stop
gives back. The end-to-end path through a real worker is in test_pipeline.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.events import local
from gateway.events.local import LocalDeliveries
from gateway.events.repository import ClaimedRow
from gateway.events.sender import ClaimedWork


class FakeDatabase:
    @contextmanager
    def session(self) -> Iterator[object]:
        yield object()


class FakeRuntime:
    database = FakeDatabase()


def _claimed(delivery_id: str) -> ClaimedRow:
    now = datetime.now(UTC)
    return ClaimedRow(
        delivery_id, "sub", "res", 0, now, now, None, "evt", "type", "subj", {}, now, now,
        "https://localhost:1/", "EventGridSchema", "webhook", 3, 1, 64, "s", None, None, "app",
    )  # fmt: skip


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = {
        "released": [],
        "unclaimed": [],
        "retried": [],
        "delivered": [],
        "validated": [],
    }
    gate, started = threading.Event(), threading.Event()
    seen["gate"], seen["started"] = [gate], [started]

    def deliver(_rt: object, ids: Sequence[str]) -> int:
        started.set()
        gate.wait(10)
        seen["delivered"].append(list(ids))
        return len(ids)

    def handshake(_rt: object, subscription_id: str) -> None:
        gate.wait(10)
        seen["validated"].append(subscription_id)

    def release_enqueue(_session: object, ids: Sequence[str], _at: datetime) -> None:
        seen["released"].extend(ids)

    def release_claims(_session: object, ids: Sequence[str]) -> None:
        seen["unclaimed"].extend(ids)

    def retry_validations_soon(_session: object, ids: Sequence[str], _at: datetime) -> None:
        seen["retried"].extend(ids)

    monkeypatch.setattr(local, "deliver", deliver)
    monkeypatch.setattr(local, "handshake", handshake)
    monkeypatch.setattr(local.fanout, "release_enqueue", release_enqueue)
    monkeypatch.setattr(local.fanout, "release_claims", release_claims)
    monkeypatch.setattr(local.validation, "retry_validations_soon", retry_validations_soon)
    return seen


def test_the_dispatcher_waits_while_the_threads_are_behind(recorded: dict[str, list[Any]]) -> None:
    pool = LocalDeliveries(FakeRuntime(), threads=1, backlog=2)  # type: ignore[arg-type]
    pool.deliver([["a"], ["b"]])
    assert pool.unfinished == 2
    assert not pool.wait_for_room(0.05)
    recorded["gate"][0].set()
    assert pool.wait_for_room(5)
    pool.close()
    assert recorded["delivered"] == [["a"], ["b"]]
    assert pool.unfinished == 0
    assert recorded["released"] == []


def test_a_stop_gives_unstarted_tasks_back_and_finishes_the_one_in_flight(
    recorded: dict[str, list[Any]],
) -> None:
    pool = LocalDeliveries(FakeRuntime(), threads=1)  # type: ignore[arg-type]
    pool.deliver([["in-flight"], ["x", "y"]])
    pool.deliver_claimed([ClaimedWork([_claimed("c1"), _claimed("c2")], claim_ends=0.0)])
    pool.validate(["sub-1"])
    assert recorded["started"][0].wait(5)
    closing = threading.Thread(target=pool.close)
    closing.start()
    recorded["gate"][0].set()  # the first task is running; the others never start
    closing.join(10)
    assert recorded["delivered"] == [["in-flight"]]
    assert recorded["released"] == ["x", "y"]
    # Claimed at fan-out: their claims go too, or no one could send them before the lease ends.
    assert recorded["unclaimed"] == ["c1", "c2"]
    assert recorded["retried"] == ["sub-1"]
    assert pool.unfinished == 0


def test_a_failed_task_is_logged_and_frees_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    def deliver(_rt: object, _ids: Sequence[str]) -> int:
        raise RuntimeError("database away")

    monkeypatch.setattr(local, "deliver", deliver)
    pool = LocalDeliveries(FakeRuntime(), threads=1, backlog=1)  # type: ignore[arg-type]
    pool.deliver([["a"]])
    assert pool.wait_for_room(5)
    pool.close()
    with pytest.raises(RuntimeError):
        pool.deliver([["late"]])
    assert pool.unfinished == 0
