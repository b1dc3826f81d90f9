"""DTMF recognition of one ``:recognize`` (``recognizeInputType`` dtmf), pure and sans-IO.

Feed it digits with the time they ended and ticks of the clock; it answers, once, how the
recognition ended: a stop tone, enough tones, or a timeout. Times are seconds on any monotonic
clock. The recognizer listens from :func:`listen` (the prompt's end, or its interruption, or at
once without a prompt): the initial silence timer runs from there, the inter-tone timer from the
last tone. ACS's result codes of each outcome are in :data:`RESULTS` (docs/calls.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

# ACS's Tone enum, by the character a worker reports.
TONE_NAMES = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "A": "a",
    "B": "b",
    "C": "c",
    "D": "d",
    "#": "pound",
    "*": "asterisk",
}
DIGITS_BY_NAME = {name: digit for digit, name in TONE_NAMES.items()}

# ACS's defaults when dtmfOptions leaves them out.
DEFAULT_MAX_TONES = 1
DEFAULT_INTER_TONE_TIMEOUT = 2.0
DEFAULT_INITIAL_SILENCE_TIMEOUT = 5.0


class Outcome(enum.Enum):
    STOP_TONE = "stop tone"
    MAX_TONES = "max tones"
    INITIAL_SILENCE = "initial silence timeout"
    INTER_TONE_TIMEOUT = "inter-tone timeout"


@dataclass(frozen=True, slots=True)
class ResultCode:
    """An outcome as ACS reports it: which event, and its ``resultInformation``."""

    completed: bool  # RecognizeCompleted (with the tones) or RecognizeFailed
    code: int
    subcode: int
    message: str


RESULTS = {
    Outcome.STOP_TONE: ResultCode(True, 200, 8514, "Action completed as stop tone was detected."),
    Outcome.MAX_TONES: ResultCode(True, 200, 8531, "Action completed, max digits received."),
    Outcome.INITIAL_SILENCE: ResultCode(False, 400, 8510, "Action failed, initial silence timeout reached."),
    Outcome.INTER_TONE_TIMEOUT: ResultCode(
        False, 400, 8532, "Action failed, inter-digit silence timeout reached."
    ),
}


@dataclass(frozen=True, slots=True)
class DtmfOptions:
    max_tones: int = DEFAULT_MAX_TONES
    inter_tone_timeout: float = DEFAULT_INTER_TONE_TIMEOUT
    initial_silence_timeout: float = DEFAULT_INITIAL_SILENCE_TIMEOUT  # 0: wait for ever
    stop_tones: frozenset[str] = frozenset()  # digits ("#", "*", ...)


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    tones: tuple[str, ...]  # digits, in order; a stop tone is not one of them

    @property
    def code(self) -> ResultCode:
        return RESULTS[self.outcome]

    def tone_names(self) -> list[str]:
        return [TONE_NAMES[digit] for digit in self.tones]


@dataclass(frozen=True, slots=True)
class Recognizer:
    options: DtmfOptions
    listening_since: float | None = None
    tones: tuple[str, ...] = ()
    last_tone_at: float | None = None
    result: Result | None = None

    @property
    def listening(self) -> bool:
        return self.listening_since is not None and self.result is None

    def deadline(self) -> float | None:
        """When the running timer fires, if one runs."""
        if not self.listening:
            return None
        if self.last_tone_at is not None:
            return self.last_tone_at + self.options.inter_tone_timeout
        if self.options.initial_silence_timeout <= 0:
            return None
        assert self.listening_since is not None
        return self.listening_since + self.options.initial_silence_timeout


def listen(recognizer: Recognizer, at: float) -> Recognizer:
    """Start listening (a second call changes nothing)."""
    if recognizer.listening_since is not None or recognizer.result is not None:
        return recognizer
    return replace(recognizer, listening_since=at)


def digit(recognizer: Recognizer, tone: str, at: float) -> tuple[Recognizer, Result | None]:
    """A digit the far end sent. Ignored before :func:`listen` and after the result; a digit
    past a due timer loses to the timer."""
    if not recognizer.listening or tone not in TONE_NAMES:
        return recognizer, None
    recognizer, result = tick(recognizer, at)
    if result is not None:
        return recognizer, result
    if tone in recognizer.options.stop_tones:
        return _done(recognizer, Outcome.STOP_TONE, recognizer.tones)
    tones = (*recognizer.tones, tone)
    if len(tones) >= recognizer.options.max_tones:
        return _done(replace(recognizer, tones=tones), Outcome.MAX_TONES, tones)
    return replace(recognizer, tones=tones, last_tone_at=at), None


def tick(recognizer: Recognizer, at: float) -> tuple[Recognizer, Result | None]:
    """The clock moved to ``at``: the result of a timer that fired by then, if any."""
    deadline = recognizer.deadline()
    if deadline is None or at < deadline:
        return recognizer, None
    if recognizer.tones:
        return _done(recognizer, Outcome.INTER_TONE_TIMEOUT, recognizer.tones)
    return _done(recognizer, Outcome.INITIAL_SILENCE, ())


def _done(recognizer: Recognizer, outcome: Outcome, tones: tuple[str, ...]) -> tuple[Recognizer, Result]:
    result = Result(outcome, tones)
    return replace(recognizer, result=result), result
