"""The media operations of one call, pure: the one owner of what plays, what listens for digits
and what waits its turn, and of the callback each outcome produces.

``:play`` and ``:recognize`` queue behind each other in the order they came (ACS's rule); one
with ``interruptCallMediaOperation`` cancels the running and queued ones first. A play starts
when its files are ready (the SIP process prepares them beforehand, out of order); a recognize
plays its prompt, then listens (gateway.calls.dtmf_recognizer). ``cancelAllMediaOperations`` and
``:hold`` cancel them all; the hold music, if any, loops while nothing else plays. Continuous
DTMF recognition and ``:sendDtmfTones`` run beside the queue. When the call ends everything
stops without a callback (the app hears ``CallDisconnected``).

Sans-IO: each method takes what happened and returns the :data:`Effect` list to carry out in
order, worker commands and callbacks; the SIP process (sip.control.media) does the IO.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Union

from gateway.calls import dtmf_recognizer as dtmf
from gateway.calls.dtmf_recognizer import DtmfOptions, Recognizer


class Kind(enum.Enum):
    PLAY = "play"
    RECOGNIZE = "recognize"
    HOLD_MUSIC = "hold music"


@dataclass(frozen=True, slots=True)
class Reply:
    """Where an operation's callbacks go: its ``operationContext``, and the subscription of its
    ``operationCallbackUri`` (None: the call's callbackUri)."""

    operation_context: str | None = None
    subscription_id: str | None = None


@dataclass(frozen=True, slots=True)
class MediaOperation:
    operation_id: str
    kind: Kind
    reply: Reply = Reply()
    sources: int = 0  # play sources (a recognize's prompts; 0: no prompt)
    loop: bool = False
    dtmf: DtmfOptions = field(default_factory=DtmfOptions)
    interrupt_prompt: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    subcode: int
    message: str


SUCCESS = Result(200, 0, "Action completed successfully.")
CANCELED = Result(400, 8508, "Action failed, the operation was canceled.")
PROMPT_FAILED = Result(500, 8511, "Action failed, encountered failure while trying to play the prompt.")
INTERNAL_ERROR = Result(500, 9999, "Unknown internal server error.")


# Effects ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartPlay:
    operation_id: str
    files: tuple[str, ...]
    loop: bool = False


@dataclass(frozen=True, slots=True)
class StopPlay:
    operation_id: str


@dataclass(frozen=True, slots=True)
class DetectInband:
    on: bool


@dataclass(frozen=True, slots=True)
class SetHold:
    held: bool


@dataclass(frozen=True, slots=True)
class SendTones:
    operation_id: str
    tones: str  # digits: 0-9, *, #, A-D


@dataclass(frozen=True, slots=True)
class Notify:
    """A callback: ``event`` (PlayCompleted, ...) to ``reply`` with ``result`` and the event's
    own fields (``extra``, in ACS's spelling)."""

    event: str
    reply: Reply
    result: Result
    extra: dict[str, Any] = field(default_factory=dict)


Effect = Union[StartPlay, StopPlay, DetectInband, SetHold, SendTones, Notify]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class PrepareFailure:
    """A source that could not be made playable: its index and ACS's result for it."""

    index: int
    result: Result


# The owner ------------------------------------------------------------------------------------------


class CallMedia:
    """The media operations of one call (not thread-safe: its caller serialises)."""

    def __init__(self) -> None:
        self._reset()
        self.ended = False

    def _reset(self) -> None:
        self.queue: list[MediaOperation] = []  # queue[0] is running once `started`
        self.started = False
        self.files: dict[str, tuple[str, ...] | PrepareFailure] = {}
        self.recognizer: Recognizer | None = None
        self.prompt_playing = False
        self.continuous: Reply | None = None
        self.sequence = 0
        self.held: Reply | None = None
        self.music: MediaOperation | None = None
        self.music_playing = False
        self.sends: dict[str, Reply] = {}
        self.inband = False

    # What the app asks -------------------------------------------------------------------------

    def submit(self, operation: MediaOperation, interrupt: bool, now: float) -> list[Effect]:
        """A play or recognize; ``interrupt``: cancel the running and queued ones first."""
        if self.ended:
            return []
        effects = self._cancel_queue() if interrupt else []
        self.queue.append(operation)
        return effects + self._advance(now)

    def cancel_all(self, now: float) -> list[Effect]:
        if self.ended:
            return []
        return self._cancel_queue() + self._advance(now)

    def hold(self, reply: Reply, music: MediaOperation | None, now: float) -> list[Effect]:
        if self.ended:
            return []
        effects = self._cancel_queue() + self._stop_music()
        self.held, self.music = reply, music
        return [*effects, SetHold(True), *self._advance(now)]

    def unhold(self, now: float) -> list[Effect]:
        if self.ended:
            return []
        effects = self._stop_music()
        self.held, self.music = None, None
        return [*effects, SetHold(False), *self._advance(now)]

    def start_continuous(self, reply: Reply) -> list[Effect]:
        if self.ended:
            return []
        self.continuous = reply
        return self._detection()

    def stop_continuous(self, reply: Reply) -> list[Effect]:
        if self.ended:
            return []
        self.continuous = None
        return [Notify("ContinuousDtmfRecognitionStopped", reply, SUCCESS), *self._detection()]

    def send_dtmf(self, operation_id: str, tones: str, reply: Reply) -> list[Effect]:
        if self.ended:
            return []
        self.sends[operation_id] = reply
        return [SendTones(operation_id, tones)]

    # What the SIP side reports -----------------------------------------------------------------

    def prepared(
        self, operation_id: str, outcome: tuple[str, ...] | PrepareFailure, now: float
    ) -> list[Effect]:
        """The files of an operation's sources are ready (or one could not be made)."""
        wanted = {operation.operation_id for operation in self.queue}
        if self.music is not None:
            wanted.add(self.music.operation_id)
        if self.ended or operation_id not in wanted:
            return []  # canceled while its files were made
        self.files[operation_id] = outcome
        return self._advance(now)

    def play_started(self, operation_id: str) -> list[Effect]:
        running = self._running()
        if running is None or running.operation_id != operation_id or running.kind is not Kind.PLAY:
            return []
        return [Notify("PlayStarted", running.reply, SUCCESS)]

    def play_finished(self, operation_id: str, outcome: str, reason: str, now: float) -> list[Effect]:
        """``outcome``: completed, stopped or failed (sip.worker.messages.PlayOutcome)."""
        if self.music is not None and operation_id == self.music.operation_id:
            return self._music_finished(outcome, reason)
        running = self._running()
        if running is None or running.operation_id != operation_id:
            return []  # an operation this owner already ended (canceled, interrupted)
        if running.kind is Kind.PLAY:
            notify = {
                "completed": Notify("PlayCompleted", running.reply, SUCCESS),
                "failed": Notify("PlayFailed", running.reply, _with_reason(INTERNAL_ERROR, reason)),
            }.get(outcome, Notify("PlayCanceled", running.reply, CANCELED))
            return self._finish(notify, now)
        if not self.prompt_playing:
            return []
        self.prompt_playing = False
        if outcome == "failed":
            failed = Notify("RecognizeFailed", running.reply, _with_reason(PROMPT_FAILED, reason))
            return self._finish(failed, now)
        return self._listen(now)

    def _music_finished(self, outcome: str, reason: str) -> list[Effect]:
        self.music_playing = False
        if outcome != "failed" or self.held is None:
            return []
        self.music = None
        return [Notify("HoldFailed", self.held, _with_reason(INTERNAL_ERROR, reason))]

    def digit(self, tone: str, now: float) -> list[Effect]:
        """A digit from the far end (``0-9*#A-D``)."""
        if self.ended or tone not in dtmf.TONE_NAMES:
            return []
        effects: list[Effect] = []
        if self.continuous is not None:
            self.sequence += 1
            extra = {"tone": dtmf.TONE_NAMES[tone], "sequenceId": self.sequence}
            effects.append(Notify("ContinuousDtmfRecognitionToneReceived", self.continuous, SUCCESS, extra))
        running = self._running()
        if running is None or running.kind is not Kind.RECOGNIZE or self.recognizer is None:
            return effects
        if not self.recognizer.listening:
            if not (self.prompt_playing and running.interrupt_prompt):
                return effects  # the prompt is not to be interrupted: recognition starts after it
            self.prompt_playing = False
            effects.append(StopPlay(running.operation_id))
            self.recognizer = dtmf.listen(self.recognizer, now)
        self.recognizer, result = dtmf.digit(self.recognizer, tone, now)
        return effects + (self._recognized(running, result, now) if result is not None else [])

    def deadline(self) -> float | None:
        """When the running recognition's timer fires, if one runs."""
        if self._running() is None or self.recognizer is None:
            return None
        return self.recognizer.deadline()

    def tick(self, now: float) -> list[Effect]:
        running = self._running()
        if running is None or self.recognizer is None:
            return []
        self.recognizer, result = dtmf.tick(self.recognizer, now)
        return self._recognized(running, result, now) if result is not None else []

    def dtmf_sent(self, operation_id: str, ok: bool, reason: str) -> list[Effect]:
        reply = self.sends.pop(operation_id, None)
        if reply is None:
            return []
        if ok:
            return [Notify("SendDtmfTonesCompleted", reply, SUCCESS)]
        return [Notify("SendDtmfTonesFailed", reply, _with_reason(INTERNAL_ERROR, reason))]

    def command_failed(self, command: str, reason: str, now: float) -> list[Effect]:
        """The worker could not carry out a command of this owner's (CommandFailed)."""
        if command == "Play":
            running = self._running()
            if running is not None and (running.kind is Kind.PLAY or self.prompt_playing):
                return self.play_finished(running.operation_id, "failed", reason, now)
            if self.music_playing and self.music is not None:
                return self.play_finished(self.music.operation_id, "failed", reason, now)
        elif command == "SendDtmf" and self.sends:
            return self.dtmf_sent(next(iter(self.sends)), False, reason)
        elif command == "Hold" and self.held is not None:
            return [Notify("HoldFailed", self.held, _with_reason(INTERNAL_ERROR, reason))]
        elif command == "DetectDtmf" and self.continuous is not None:
            failed = _with_reason(INTERNAL_ERROR, reason)
            return [Notify("ContinuousDtmfRecognitionToneFailed", self.continuous, failed)]
        return []

    def call_ended(self) -> list[Effect]:
        """The call is over: nothing more plays or listens, and no callback says so."""
        self._reset()
        self.ended = True
        return []

    # Rules ----------------------------------------------------------------------------------------

    def _running(self) -> MediaOperation | None:
        return self.queue[0] if self.queue and self.started else None

    def _cancel_queue(self) -> list[Effect]:
        effects: list[Effect] = []
        running = self._running()
        if running is not None and (running.kind is Kind.PLAY or self.prompt_playing):
            effects.append(StopPlay(running.operation_id))
        for operation in self.queue:
            event = "PlayCanceled" if operation.kind is Kind.PLAY else "RecognizeCanceled"
            effects.append(Notify(event, operation.reply, CANCELED))
            self.files.pop(operation.operation_id, None)
        self.queue, self.started, self.recognizer, self.prompt_playing = [], False, None, False
        return effects

    def _stop_music(self) -> list[Effect]:
        if self.music is None or not self.music_playing:
            return []
        self.music_playing = False
        return [StopPlay(self.music.operation_id)]

    def _finish(self, notify: Notify, now: float) -> list[Effect]:
        """The running operation ended with ``notify``; the next one starts."""
        finished = self.queue.pop(0)
        self.files.pop(finished.operation_id, None)
        self.started, self.recognizer, self.prompt_playing = False, None, False
        return [notify, *self._advance(now)]

    def _advance(self, now: float) -> list[Effect]:
        """Start the queue's head once its files are ready; hold music fills the silence."""
        effects: list[Effect] = []
        while self.queue and not self.started:
            head = self.queue[0]
            files: tuple[str, ...] | PrepareFailure | None = ()
            if head.sources:
                files = self.files.get(head.operation_id)
            if files is None:
                break  # still being prepared
            if isinstance(files, PrepareFailure):
                event = "PlayFailed" if head.kind is Kind.PLAY else "RecognizeFailed"
                extra = {"failedPlaySourceIndex": files.index}
                effects.append(Notify(event, head.reply, files.result, extra))
                self.queue.pop(0)
                self.files.pop(head.operation_id, None)
                continue
            effects += self._stop_music()
            self.started = True
            if head.kind is Kind.RECOGNIZE:
                self.recognizer = Recognizer(head.dtmf)
                if not files:
                    effects += self._listen(now)
                    break
                self.prompt_playing = True
            effects.append(StartPlay(head.operation_id, files, head.loop and head.kind is Kind.PLAY))
        if not self.queue and self.music is not None and not self.music_playing:
            music_files = self.files.get(self.music.operation_id)
            if isinstance(music_files, PrepareFailure) and self.held is not None:
                effects.append(Notify("HoldFailed", self.held, music_files.result))
                self.music = None
            elif isinstance(music_files, tuple):
                self.music_playing = True
                effects.append(StartPlay(self.music.operation_id, music_files, True))
        return effects + self._detection()

    def _listen(self, now: float) -> list[Effect]:
        assert self.recognizer is not None
        self.recognizer = dtmf.listen(self.recognizer, now)
        return self._detection()

    def _recognized(self, running: MediaOperation, result: dtmf.Result, now: float) -> list[Effect]:
        code = result.code
        answer = Result(code.code, code.subcode, code.message)
        effects: list[Effect] = []
        if self.prompt_playing:
            effects.append(StopPlay(running.operation_id))
        if code.completed:
            extra = {"recognitionType": "dtmf", "dtmfResult": {"tones": result.tone_names()}}
            notify = Notify("RecognizeCompleted", running.reply, answer, extra)
        else:
            notify = Notify("RecognizeFailed", running.reply, answer)
        return effects + self._finish(notify, now)

    def _detection(self) -> list[Effect]:
        """In-band detection on exactly while something listens for digits."""
        running = self._running()
        recognizing = (
            running is not None
            and running.kind is Kind.RECOGNIZE
            and self.recognizer is not None
            and (self.recognizer.listening or (self.prompt_playing and running.interrupt_prompt))
        )
        wanted = recognizing or self.continuous is not None
        if wanted == self.inband:
            return []
        self.inband = wanted
        return [DetectInband(wanted)]


def _with_reason(result: Result, reason: str) -> Result:
    return Result(
        result.code, result.subcode, f"{result.message} {reason}".strip() if reason else result.message
    )
