"""The owner of a call's media operations: what runs, what waits, what each outcome tells the app;
examples with ACS's codes, and a state machine of random requests and worker news."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gateway.calls.dtmf_recognizer import DtmfOptions
from gateway.calls.media_operations import (
    CallMedia,
    DetectInband,
    Effect,
    Kind,
    MediaOperation,
    Notify,
    PrepareFailure,
    Reply,
    Result,
    SendTones,
    SetHold,
    StartPlay,
    StopPlay,
)

TERMINAL = {
    "PlayCompleted",
    "PlayFailed",
    "PlayCanceled",
    "RecognizeCompleted",
    "RecognizeFailed",
    "RecognizeCanceled",
}


def play(op: str, sources: int = 1, loop: bool = False) -> MediaOperation:
    return MediaOperation(op, Kind.PLAY, Reply(op, "sub"), sources=sources, loop=loop)


def recognize(op: str, prompt: bool = True, interrupt_prompt: bool = False, **dtmf: Any) -> MediaOperation:
    return MediaOperation(
        op, Kind.RECOGNIZE, Reply(op, "sub"), 1 if prompt else 0, dtmf=DtmfOptions(**dtmf),
        interrupt_prompt=interrupt_prompt,
    )  # fmt: skip


def notices(effects: list[Effect]) -> list[tuple[str, str | None, int, int]]:
    return [
        (e.event, e.reply.operation_context, e.result.code, e.result.subcode)
        for e in effects
        if isinstance(e, Notify)
    ]


def test_plays_queue_in_order_and_each_completes() -> None:
    media = CallMedia()
    assert media.submit(play("a"), False, 0) == []  # its files are not ready yet
    assert media.submit(play("b"), False, 0) == []
    assert media.prepared("b", ("b.wav",), 0) == []  # b waits for a
    assert media.prepared("a", ("a.wav",), 0) == [StartPlay("a", ("a.wav",))]
    assert notices(media.play_started("a")) == [("PlayStarted", "a", 200, 0)]
    done = media.play_finished("a", "completed", "", 1)
    assert notices(done) == [("PlayCompleted", "a", 200, 0)]
    assert StartPlay("b", ("b.wav",)) in done


def test_interrupt_cancels_the_running_and_queued_operations_with_8508() -> None:
    media = CallMedia()
    media.submit(play("a"), False, 0)
    media.prepared("a", ("a.wav",), 0)
    media.submit(recognize("b"), False, 0)
    effects = media.submit(play("c", loop=True), True, 0)
    assert effects[0] == StopPlay("a")
    assert notices(effects) == [("PlayCanceled", "a", 400, 8508), ("RecognizeCanceled", "b", 400, 8508)]
    assert media.prepared("c", ("c.wav",), 0) == [StartPlay("c", ("c.wav",), True)]
    assert media.play_finished("a", "stopped", "", 0) == []  # the worker's late news of a


def test_a_source_that_cannot_be_prepared_fails_the_play_with_its_index() -> None:
    media = CallMedia()
    media.submit(play("a", sources=3), False, 0)
    failed = media.prepared("a", PrepareFailure(2, Result(400, 8536, "could not be downloaded")), 0)
    assert notices(failed) == [("PlayFailed", "a", 400, 8536)]
    assert failed[0].extra == {"failedPlaySourceIndex": 2}  # type: ignore[union-attr]


def test_recognize_listens_after_its_prompt_and_completes_with_the_tones() -> None:
    media = CallMedia()
    media.submit(recognize("r", max_tones=2), False, 0)
    assert media.prepared("r", ("p.wav",), 0) == [StartPlay("r", ("p.wav",))]
    assert media.digit("5", 1) == []  # during a prompt that is not to be interrupted
    assert media.play_finished("r", "completed", "", 3) == [DetectInband(True)]
    assert media.tick(7.9) == []  # initial silence (5 s) counts from the prompt's end
    assert media.digit("1", 7.95) == []
    done = media.digit("#", 8.5)
    assert notices(done) == [("RecognizeCompleted", "r", 200, 8531)]
    assert done[0].extra == {"recognitionType": "dtmf", "dtmfResult": {"tones": ["one", "pound"]}}  # type: ignore[union-attr]
    assert done[-1] == DetectInband(False)


def test_initial_silence_after_the_prompt_fails_with_8510() -> None:
    media = CallMedia()
    media.submit(recognize("r", initial_silence_timeout=5), False, 0)
    media.prepared("r", ("p.wav",), 0)
    media.play_finished("r", "completed", "", 2)
    assert media.tick(6.9) == []
    assert notices(media.tick(7)) == [("RecognizeFailed", "r", 400, 8510)]


def test_a_digit_interrupts_an_interruptible_prompt_and_counts() -> None:
    media = CallMedia()
    media.submit(recognize("r", interrupt_prompt=True, max_tones=1), False, 0)
    assert media.prepared("r", ("p.wav",), 0) == [StartPlay("r", ("p.wav",)), DetectInband(True)]
    effects = media.digit("7", 1)
    assert effects[0] == StopPlay("r")
    assert notices(effects) == [("RecognizeCompleted", "r", 200, 8531)]
    assert media.play_finished("r", "stopped", "", 1) == []


def test_a_prompt_that_fails_to_play_fails_the_recognize_with_8511() -> None:
    media = CallMedia()
    media.submit(recognize("r"), False, 0)
    media.prepared("r", ("p.wav",), 0)
    assert notices(media.play_finished("r", "failed", "bad file", 1)) == [("RecognizeFailed", "r", 500, 8511)]


def test_continuous_dtmf_numbers_the_tones_and_says_when_it_stops() -> None:
    media = CallMedia()
    assert media.start_continuous(Reply("c", "sub")) == [DetectInband(True)]
    first, second = media.digit("1", 0), media.digit("*", 0)
    assert [e.extra for e in first + second] == [  # type: ignore[union-attr]
        {"tone": "one", "sequenceId": 1},
        {"tone": "asterisk", "sequenceId": 2},
    ]
    stopped = media.stop_continuous(Reply("c2", "sub"))
    assert notices(stopped) == [("ContinuousDtmfRecognitionStopped", "c2", 200, 0)]
    assert stopped[-1] == DetectInband(False)


def test_send_dtmf_answers_completed_or_failed() -> None:
    media = CallMedia()
    assert media.send_dtmf("s1", "12#", Reply("s1", "sub")) == [SendTones("s1", "12#")]
    assert notices(media.dtmf_sent("s1", True, "")) == [("SendDtmfTonesCompleted", "s1", 200, 0)]
    media.send_dtmf("s2", "9", Reply("s2", "sub"))
    assert notices(media.command_failed("SendDtmf", "no such call", 0)) == [
        ("SendDtmfTonesFailed", "s2", 500, 9999)
    ]


def test_hold_cancels_and_loops_its_music_while_nothing_else_plays() -> None:
    media = CallMedia()
    media.submit(play("a"), False, 0)
    media.prepared("a", ("a.wav",), 0)
    music = MediaOperation("m", Kind.HOLD_MUSIC, Reply("h", "sub"), sources=1)
    held = media.hold(Reply("h", "sub"), music, 0)
    assert held[0] == StopPlay("a")
    assert SetHold(True) in held
    assert notices(held) == [("PlayCanceled", "a", 400, 8508)]
    assert media.prepared("m", ("m.wav",), 0) == [StartPlay("m", ("m.wav",), True)]
    media.submit(play("b"), False, 0)
    assert media.prepared("b", ("b.wav",), 0) == [StopPlay("m"), StartPlay("b", ("b.wav",))]
    assert media.play_finished("b", "completed", "", 1)[-1] == StartPlay("m", ("m.wav",), True)
    assert media.unhold(2) == [StopPlay("m"), SetHold(False)]


def test_the_call_ending_stops_everything_without_callbacks() -> None:
    media = CallMedia()
    media.submit(recognize("r", prompt=False), False, 0)
    media.start_continuous(Reply("c", "sub"))
    assert media.call_ended() == []
    assert media.digit("1", 1) == []
    assert media.tick(100) == []
    assert media.submit(play("x"), False, 2) == []


class MediaMachine(RuleBasedStateMachine):
    """Random requests and worker news; every operation ends once, in the order they came."""

    def __init__(self) -> None:
        super().__init__()
        self.media = CallMedia()
        self.now = 0.0
        self.submitted: list[str] = []
        self.ended: list[str] = []
        self.inband = False
        self.next_id = 0

    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Notify) and effect.event in TERMINAL:
                assert effect.reply.operation_context not in self.ended, effect
                self.ended.append(effect.reply.operation_context or "")
            if isinstance(effect, DetectInband):
                assert effect.on != self.inband  # only changes are sent
                self.inband = effect.on
            if isinstance(effect, StartPlay) and effect.operation_id != "music":
                running = self.media._running()
                assert running is not None
                assert running.operation_id == effect.operation_id

    @rule(kind=st.sampled_from([Kind.PLAY, Kind.RECOGNIZE]), interrupt=st.booleans(), prompt=st.booleans())
    def submit(self, kind: Kind, interrupt: bool, prompt: bool) -> None:
        self.next_id += 1
        op = f"op{self.next_id}"
        operation = play(op) if kind is Kind.PLAY else recognize(op, prompt=prompt, max_tones=2)
        if not self.media.ended:
            self.submitted.append(op)
        self.apply(self.media.submit(operation, interrupt, self.now))

    @rule(data=st.data(), fail=st.booleans())
    def prepare(self, data: st.DataObject, fail: bool) -> None:
        waiting = [op.operation_id for op in self.media.queue if op.operation_id not in self.media.files]
        if waiting:
            op = data.draw(st.sampled_from(waiting))
            outcome = PrepareFailure(0, Result(400, 8536, "x")) if fail else (f"{op}.wav",)
            self.apply(self.media.prepared(op, outcome, self.now))

    @rule(outcome=st.sampled_from(["completed", "stopped", "failed"]))
    def worker_finishes(self, outcome: str) -> None:
        running = self.media._running()
        if running is not None:
            self.apply(self.media.play_started(running.operation_id))
            self.apply(self.media.play_finished(running.operation_id, outcome, "", self.now))

    @rule(digit=st.sampled_from("12#"))
    def digit(self, digit: str) -> None:
        self.apply(self.media.digit(digit, self.now))

    @rule(seconds=st.floats(0, 10))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        self.apply(self.media.tick(self.now))

    @rule()
    def cancel_all(self) -> None:
        self.apply(self.media.cancel_all(self.now))
        if not self.media.ended:
            assert sorted(self.ended) == sorted(self.submitted)

    @rule(music=st.booleans())
    def hold(self, music: bool) -> None:
        operation = MediaOperation("music", Kind.HOLD_MUSIC, Reply("h", "sub"), 1) if music else None
        self.apply(self.media.hold(Reply("h", "sub"), operation, self.now))
        self.apply(self.media.prepared("music", ("m.wav",), self.now))

    @rule()
    def unhold(self) -> None:
        self.apply(self.media.unhold(self.now))

    @rule(on=st.booleans())
    def continuous(self, on: bool) -> None:
        reply = Reply("c", "sub")
        self.apply(self.media.start_continuous(reply) if on else self.media.stop_continuous(reply))

    @precondition(lambda self: len(self.submitted) > 3)
    @rule()
    def call_ends(self) -> None:
        self.media.call_ended()
        self.submitted = list(self.ended)
        self.inband = False

    @invariant()
    def operations_end_in_the_order_they_came(self) -> None:
        assert self.ended == [op for op in self.submitted if op in self.ended]

    @invariant()
    def detection_is_on_exactly_while_something_listens(self) -> None:
        running = self.media._running()
        recognizer = self.media.recognizer
        listening = (
            running is not None
            and running.kind is Kind.RECOGNIZE
            and recognizer is not None
            and (recognizer.listening or (self.media.prompt_playing and running.interrupt_prompt))
        )
        if not self.media.ended:
            assert self.inband == (listening or self.media.continuous is not None)


MediaMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
TestMediaOperations = MediaMachine.TestCase
