"""The SIP process's media controller with the real database: requests become worker commands,
worker events become callbacks in the outbox, and the official SDK's event models read every
callback it writes. The pool is a recorder here; tests/e2e/calls runs the real one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.communication.callautomation._generated import models as sdk
from sqlalchemy import select

from gateway.calls.media_requests import Action, MediaRequest
from gateway.calls.play_sources import PlaySource, PlaySourceFailed
from gateway.core.db import Database
from gateway.events.models import OutboxEvent
from sip.control.media import SYNC_TIMEOUT, MediaController
from sip.dtmf_mode import DtmfMode
from sip.worker.messages import (
    CallState,
    CallStateChanged,
    Command,
    CommandFailed,
    DetectDtmf,
    DtmfDetection,
    DtmfMethod,
    DtmfReceived,
    DtmfSent,
    Event,
    MediaStats,
    Play,
    PlayFinished,
    PlayOutcome,
    PlayStarted,
    QueryMedia,
    SendDtmf,
    StopPlay,
)
from sip.worker.pool import WorkerEvent

LEG = "leg-1"
FILE = {"kind": "file", "file": {"uri": "https://prompts.example.com/hello.wav"}}
MISSING = {"kind": "file", "file": {"uri": "https://prompts.example.com/missing.wav"}}


class Runtime:
    """Records the commands the controller sends to the pool."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.lock = threading.Lock()

    def send(self, command: Command) -> int:
        with self.lock:
            self.commands.append(command)
        return 0

    def wait_for(self, kind: type[Any], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [c for c in self.commands if isinstance(c, kind)]
            if found:
                return found[-1]
            time.sleep(0.01)
        raise AssertionError(f"no {kind.__name__} in {self.commands}")


class Preparer:
    """Stands in for gateway.calls.play_sources' preparer: a file, or a download failure."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def prepare(self, source: PlaySource, *, scope: str = "") -> Path:
        assert scope  # the resource: its cache ids are its own
        if "missing" in repr(source):
            raise PlaySourceFailed(400, 8536, "Action failed, file could not be downloaded.")
        return self.directory / "prompt.wav"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def controller(database: Database, tmp_path: Path, clock: Clock) -> Iterator[MediaController]:
    controller = MediaController(database, Preparer(tmp_path), clock=clock)
    yield controller
    controller.close()


def request(resource: dict[str, Any], action: Action, operation: str, **fields: Any) -> MediaRequest:
    return MediaRequest(
        action=action,
        call_id="call-1",
        leg_id=LEG,
        resource_id=resource["id"],
        server_call_id="c2VydmVy",
        correlation_id="corr-1",
        operation_id=operation,
        subscription_id="sub-1",
        operation_context=operation,
        **fields,
    )


def event(controller: MediaController, runtime: Runtime, item: Event) -> bool:
    return controller.on_event(WorkerEvent(0, item), runtime)  # type: ignore[arg-type]


def recognizing(controller: MediaController, resource: dict[str, Any], **fields: Any) -> Runtime:
    """A DTMF recognition without a prompt (it listens at once), on the runtime returned."""
    runtime = Runtime()
    controller.on_request(request(resource, Action.RECOGNIZE, "r1", **fields), runtime)  # type: ignore[arg-type]
    return runtime


def press(controller: MediaController, runtime: Runtime, tone: str, arrived: float) -> bool:
    """An RFC 2833 key press that reached its worker at ``arrived``, handed to the controller."""
    return event(controller, runtime, DtmfReceived(LEG, tone, DtmfMethod.RFC2833, 100, arrived))


def callbacks(database: Database) -> list[tuple[str, dict[str, Any]]]:
    with database.read_session() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.created_at)).all()
        found = [(row.event_type.removeprefix("Microsoft.Communication."), row.data) for row in rows]
    for row_type, data in found:
        assert row_type
        assert data["callConnectionId"] == "call-1"
    return found


def parsed(database: Database, event_type: str) -> Any:
    """The last callback of ``event_type``, read by the SDK's model of that event."""
    data = [d for t, d in callbacks(database) if t == event_type][-1]
    model = getattr(sdk, event_type).deserialize(data)
    assert model.call_connection_id == "call-1"
    assert model.server_call_id == "c2VydmVy"
    assert model.correlation_id == "corr-1"
    return model


def test_a_play_runs_and_its_callbacks_parse(
    controller: MediaController, database: Database, resource_a: dict[str, Any]
) -> None:
    runtime = Runtime()
    controller.on_request(request(resource_a, Action.PLAY, "p1", sources=(FILE,), loop=False), runtime)  # type: ignore[arg-type]
    play = runtime.wait_for(Play)
    assert (play.call_id, play.operation_id, play.loop) == (LEG, "p1", False)
    assert play.files[0].endswith("prompt.wav")
    assert event(controller, runtime, PlayStarted(LEG, "p1"))
    assert event(controller, runtime, PlayFinished(LEG, "p1", PlayOutcome.COMPLETED))
    started = parsed(database, "PlayStarted")
    assert started.operation_context == "p1"
    completed = parsed(database, "PlayCompleted")
    assert (completed.result_information.code, completed.result_information.sub_code) == (200, 0)


def test_a_source_that_cannot_be_fetched_is_play_failed_with_its_index(
    controller: MediaController, database: Database, resource_a: dict[str, Any]
) -> None:
    runtime = Runtime()
    controller.on_request(request(resource_a, Action.PLAY, "p2", sources=(FILE, MISSING)), runtime)  # type: ignore[arg-type]
    deadline = time.monotonic() + 5
    while not callbacks(database) and time.monotonic() < deadline:
        time.sleep(0.02)
    failed = parsed(database, "PlayFailed")
    assert failed.failed_play_source_index == 1
    assert (failed.result_information.code, failed.result_information.sub_code) == (400, 8536)
    assert not [c for c in runtime.commands if isinstance(c, Play)]


def test_recognize_collects_digits_and_its_result_parses(
    controller: MediaController, database: Database, resource_a: dict[str, Any]
) -> None:
    runtime = Runtime()
    recognize = request(resource_a, Action.RECOGNIZE, "r1", max_tones=3, stop_tones="#")
    controller.on_request(recognize, runtime)  # type: ignore[arg-type]
    assert runtime.commands == [DetectDtmf(LEG, True)]  # no prompt: it listens at once
    for digit in "42#":
        assert event(controller, runtime, DtmfReceived(LEG, digit, DtmfMethod.RFC2833))
    completed = parsed(database, "RecognizeCompleted")
    assert completed.recognition_type == "dtmf"
    assert completed.dtmf_result.tones == ["four", "two"]
    assert (completed.result_information.code, completed.result_information.sub_code) == (200, 8514)
    assert runtime.commands[-1] == DetectDtmf(LEG, False)


def test_a_digit_is_judged_by_its_arrival_at_the_worker_not_by_when_it_got_here(
    controller: MediaController, database: Database, resource_a: dict[str, Any], clock: Clock
) -> None:
    runtime = recognizing(controller, resource_a, max_tones=3, inter_tone_timeout=2.0)
    assert press(controller, runtime, "1", clock.now)
    clock.now += 3.0  # the next digit came 1.5 s after the first, and queued for 1.5 s on the way
    assert press(controller, runtime, "2", clock.now - 1.5)
    # a stamp from the future (another host's clock) is taken as now: 1.5 s after "2" came
    assert press(controller, runtime, "3", clock.now + 50)
    completed = parsed(database, "RecognizeCompleted")
    assert completed.dtmf_result.tones == ["one", "two", "three"]


def test_a_digit_that_came_after_the_inter_tone_timeout_loses_to_it(
    controller: MediaController, database: Database, resource_a: dict[str, Any], clock: Clock
) -> None:
    runtime = recognizing(controller, resource_a, max_tones=3, inter_tone_timeout=2.0)
    assert press(controller, runtime, "1", clock.now)
    clock.now += 2.5
    assert press(controller, runtime, "2", clock.now - 0.1)
    failed = parsed(database, "RecognizeFailed")
    assert failed.result_information.sub_code == 8532  # inter-tone timeout


def test_detect_dtmf_carries_the_trunks_mode_of_the_last_listening_request(
    controller: MediaController, resource_a: dict[str, Any]
) -> None:
    runtime = Runtime()
    recognize = request(resource_a, Action.RECOGNIZE, "r1", max_tones=1, dtmf_mode="inband")
    controller.on_request(recognize, runtime)  # type: ignore[arg-type]
    assert runtime.commands == [DetectDtmf(LEG, True, DtmfMode.INBAND)]
    # the worker's answer is media's, and changes nothing
    assert event(controller, runtime, DtmfDetection(LEG, True, DtmfMode.INBAND, True))
    assert runtime.commands == [DetectDtmf(LEG, True, DtmfMode.INBAND)]
    assert event(controller, runtime, DtmfReceived(LEG, "5", DtmfMethod.INBAND))
    assert runtime.commands[-1] == DetectDtmf(LEG, False, DtmfMode.INBAND)


def test_silence_after_the_prompt_is_recognize_failed_8510(
    controller: MediaController, database: Database, resource_a: dict[str, Any], clock: Clock
) -> None:
    runtime = Runtime()
    recognize = request(resource_a, Action.RECOGNIZE, "r2", sources=(FILE,), initial_silence_timeout=3.0)
    controller.on_request(recognize, runtime)  # type: ignore[arg-type]
    runtime.wait_for(Play)
    clock.now += 10  # the prompt plays for 10 s: no timer runs meanwhile
    controller.tick(runtime)  # type: ignore[arg-type]
    assert event(controller, runtime, PlayFinished(LEG, "r2", PlayOutcome.COMPLETED))
    clock.now += 2.9
    controller.tick(runtime)  # type: ignore[arg-type]
    assert callbacks(database) == []
    assert not any(isinstance(c, QueryMedia) for c in runtime.commands)
    clock.now += 0.2
    controller.tick(runtime)  # type: ignore[arg-type]
    assert callbacks(database) == []  # first the worker is asked for the digits it may hold
    sync = runtime.wait_for(QueryMedia)
    assert event(controller, runtime, MediaStats(LEG, 10, 10, "another poll's")) is False
    assert callbacks(database) == []
    assert event(controller, runtime, MediaStats(LEG, 10, 10, sync.token)) is False
    failed = parsed(database, "RecognizeFailed")
    assert (failed.result_information.code, failed.result_information.sub_code) == (400, 8510)


def test_a_due_timer_waits_for_a_digit_its_worker_already_had(
    controller: MediaController, database: Database, resource_a: dict[str, Any], clock: Clock
) -> None:
    runtime = recognizing(controller, resource_a, max_tones=2, inter_tone_timeout=2.0)
    first = clock.now
    assert press(controller, runtime, "1", first)
    clock.now += 2.5
    controller.tick(runtime)  # type: ignore[arg-type]
    sync = runtime.wait_for(QueryMedia)
    # the second digit reached the worker 1.5 s after the first, and only now gets here
    assert press(controller, runtime, "2", first + 1.5)
    event(controller, runtime, MediaStats(LEG, 10, 10, sync.token))
    assert [t for t, _ in callbacks(database)] == ["RecognizeCompleted"]
    assert parsed(database, "RecognizeCompleted").dtmf_result.tones == ["one", "two"]


def test_a_worker_that_does_not_answer_lets_the_timer_decide(
    controller: MediaController, database: Database, resource_a: dict[str, Any], clock: Clock
) -> None:
    runtime = recognizing(controller, resource_a, max_tones=2, initial_silence_timeout=3.0)
    clock.now += 3.0
    controller.tick(runtime)  # type: ignore[arg-type]
    runtime.wait_for(QueryMedia)
    clock.now += SYNC_TIMEOUT - 0.1
    controller.tick(runtime)  # type: ignore[arg-type]
    assert callbacks(database) == []
    clock.now += 0.1
    controller.tick(runtime)  # type: ignore[arg-type]
    assert parsed(database, "RecognizeFailed").result_information.sub_code == 8510


def test_continuous_dtmf_send_dtmf_hold_and_cancel_callbacks_parse(
    controller: MediaController, database: Database, resource_a: dict[str, Any]
) -> None:
    runtime = Runtime()
    controller.on_request(request(resource_a, Action.START_CONTINUOUS_DTMF, "c1"), runtime)  # type: ignore[arg-type]
    event(controller, runtime, DtmfReceived(LEG, "5", DtmfMethod.INBAND))
    event(controller, runtime, DtmfReceived(LEG, "*", DtmfMethod.SIP_INFO))
    tone = parsed(database, "ContinuousDtmfRecognitionToneReceived")
    assert (tone.tone, tone.sequence_id) == ("asterisk", 2)
    controller.on_request(request(resource_a, Action.STOP_CONTINUOUS_DTMF, "c2"), runtime)  # type: ignore[arg-type]
    assert parsed(database, "ContinuousDtmfRecognitionStopped").operation_context == "c2"

    controller.on_request(request(resource_a, Action.SEND_DTMF, "s1", tones="12#"), runtime)  # type: ignore[arg-type]
    assert SendDtmf(LEG, "s1", "12#") in runtime.commands
    event(controller, runtime, DtmfSent(LEG, "s1", True))
    assert parsed(database, "SendDtmfTonesCompleted").operation_context == "s1"

    controller.on_request(request(resource_a, Action.HOLD, "h1"), runtime)  # type: ignore[arg-type]
    assert event(controller, runtime, CommandFailed(LEG, "Hold", "not carried out"))
    held = parsed(database, "HoldFailed")
    assert held.result_information.code == 500

    controller.on_request(request(resource_a, Action.PLAY, "p3", sources=(FILE,), loop=True), runtime)  # type: ignore[arg-type]
    runtime.wait_for(Play)
    controller.on_request(request(resource_a, Action.CANCEL_ALL, "x"), runtime)  # type: ignore[arg-type]
    assert StopPlay(LEG, "p3") in runtime.commands
    canceled = parsed(database, "PlayCanceled")
    assert (canceled.operation_context, canceled.result_information.sub_code) == ("p3", 8508)


def test_the_call_ending_forgets_it_and_leaves_the_event_to_the_call_controller(
    controller: MediaController, database: Database, resource_a: dict[str, Any]
) -> None:
    runtime = Runtime()
    controller.on_request(request(resource_a, Action.RECOGNIZE, "r3"), runtime)  # type: ignore[arg-type]
    assert not event(controller, runtime, CallStateChanged(LEG, CallState.DISCONNECTED, 200, "BYE"))
    assert event(controller, runtime, DtmfReceived(LEG, "1", DtmfMethod.RFC2833))  # media's, ignored
    controller.tick(runtime)  # type: ignore[arg-type]
    assert callbacks(database) == []


def test_a_request_for_a_call_the_workers_no_longer_hold_is_forgotten(
    controller: MediaController, database: Database, resource_a: dict[str, Any]
) -> None:
    runtime = Runtime()
    controller.on_request(request(resource_a, Action.SEND_DTMF, "late", tones="1"), runtime)  # type: ignore[arg-type]
    assert event(controller, runtime, CommandFailed(LEG, "SendDtmf", "no such call"))
    assert parsed(database, "SendDtmfTonesFailed").operation_context == "late"
    assert not event(controller, runtime, CommandFailed(LEG, "SendDtmf", "no such call"))  # forgotten
