"""The media controller driving a real SIP worker: SIPp carries the call's signalling, an RTP peer
of the test its audio. The prompt a recognize plays is found in what the far end heard, and the
digits the far end presses as RFC 2833 are the tones of ``RecognizeCompleted``."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.calls.media_requests import Action, MediaRequest
from gateway.calls.play_sources import PlaySource
from gateway.core.db import Database
from sip.control.media import MediaController
from sip.worker.messages import CommandFailed, PlayFinished
from sip.worker.pool import WorkerEvent, WorkerPool
from tests.sip.audio import dominant_tones, runs, tone, write_wav
from tests.sip.conftest import PoolFactory
from tests.sip.control.test_media import FILE, parsed
from tests.sip.support import RtpPeer
from tests.sip.worker.test_media import PROMPT_TONES, answered_call

pytestmark = [pytest.mark.sip, pytest.mark.timeout(120)]


@pytest.fixture
def db_backend() -> str:
    return "sqlite"  # the worker is what this test is about; test_media.py runs both databases


class PromptPreparer:
    """Every source is the test's prompt: three tones in a row."""

    def __init__(self, wav: Path) -> None:
        self.wav = wav

    def prepare(self, source: PlaySource, *, scope: str = "") -> Path:
        return self.wav


class PoolRuntime:
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def send(self, command: Any) -> int | None:
        return self.pool.send(command)


def pump(
    controller: MediaController, pool: WorkerPool, until: Callable[[list[Any]], bool], timeout: float = 15.0
) -> list[Any]:
    """Feed the pool's events and the clock to the controller until ``until(events so far)``."""
    runtime, seen = PoolRuntime(pool), []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            item: WorkerEvent = pool.events.get(timeout=0.05)
        except queue.Empty:
            pass
        else:
            seen.append(item.event)
            controller.on_event(item, runtime)  # type: ignore[arg-type]
        controller.tick(runtime)  # type: ignore[arg-type]
        if until(seen):
            return seen
    raise AssertionError(f"gave up; saw {seen}")


@pytest.fixture
def pool(make_pool: PoolFactory) -> WorkerPool:
    return make_pool(1)


@pytest.fixture
def peer() -> Iterator[RtpPeer]:
    made = RtpPeer()
    yield made
    made.close()


def test_a_recognize_plays_its_prompt_to_the_far_end_and_hears_its_digits(
    pool: WorkerPool, tmp_path: Path, peer: RtpPeer, database: Database, resource_a: dict[str, Any]
) -> None:
    wav = write_wav(tmp_path / "prompt.wav", [s for freq in PROMPT_TONES for s in tone(freq, 0.3)])
    controller = MediaController(database, PromptPreparer(wav))
    call_id, sipp = answered_call(pool, tmp_path, peer, 8.0)
    try:
        time.sleep(0.3)
        since = time.monotonic()
        controller.on_request(
            MediaRequest(
                Action.RECOGNIZE, "call-1", call_id, resource_a["id"], "c2VydmVy", "corr-1", "pin",
                subscription_id="sub-1", operation_context="pin", sources=(FILE,), max_tones=3,
                initial_silence_timeout=5.0,
            ),
            PoolRuntime(pool),  # type: ignore[arg-type]
        )  # fmt: skip
        seen = pump(controller, pool, lambda events: any(isinstance(e, PlayFinished) for e in events))
        assert not [e for e in seen if isinstance(e, CommandFailed)], seen
        time.sleep(0.3)  # the jitter of the last packets
        heard = [f for f, count in runs(dominant_tones(peer.pcm(since), PROMPT_TONES)) if f and count >= 10]
        assert heard == list(PROMPT_TONES)  # the prompt reached the caller, in order

        for digit in "429":
            peer.press_rfc2833(digit)
        seen = pump(
            controller, pool, lambda events: sum(1 for e in events if type(e).__name__ == "DtmfReceived") >= 3
        )
        completed = parsed(database, "RecognizeCompleted")
        assert completed.dtmf_result.tones == ["four", "two", "nine"]
        assert (completed.result_information.code, completed.result_information.sub_code) == (200, 8531)
    finally:
        controller.close()
        sipp.kill()
