"""One ``Play`` of a call: its WAV files in order (repeated when looping), one pjsua2 player at a time.

A ``Playback`` is created, advanced and closed by the worker's owner thread. pjsua2 reports a
file's end (``onEof2``) from pjmedia's own event thread, so that callback only appends a token
to a thread-safe deque; the owner moves to the next file after its poll, never inside the
callback (destroying a player from its own callback frees the object the callback runs on).
"""

from __future__ import annotations

import itertools
import wave
from collections import deque
from collections.abc import Callable

import pjsua2 as pj

from sip.worker.messages import Play

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2

EofQueue = deque[int]  # tokens of players that reached their end; appended from pjmedia's thread
_tokens = itertools.count(1)


class PlayError(Exception):
    """A file of a play cannot be opened or is not 8 kHz mono 16-bit PCM WAV."""


class _FilePlayer(pj.AudioMediaPlayer):  # type: ignore[misc]
    def __init__(self, on_eof: Callable[[], None]) -> None:
        super().__init__()
        self._on_eof = on_eof

    def onEof2(self) -> None:  # runs on pjmedia's event thread, not the owner
        self._on_eof()


def check_file(path: str) -> None:
    """Raise ``PlayError`` unless ``path`` is a readable 8 kHz mono 16-bit PCM WAV file."""
    try:
        with wave.open(path, "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
    except (OSError, EOFError, wave.Error) as exc:
        raise PlayError(f"cannot open {path}: {exc}") from exc
    if (rate, channels, width) != (SAMPLE_RATE, 1, SAMPLE_WIDTH):
        raise PlayError(
            f"{path} is {rate} Hz, {channels} channel(s), {8 * width}-bit: "
            "a play needs 8 kHz mono 16-bit PCM WAV"
        )


def next_index(index: int, count: int, loop: bool) -> int | None:
    """The file after ``index`` in a sequence of ``count`` files; None when the play is over."""
    if index + 1 < count:
        return index + 1
    return 0 if loop and count > 0 else None


class Playback:
    """The running play of one call; ``player`` is the pjsua2 port currently playing a file."""

    def __init__(self, play: Play, eofs: EofQueue) -> None:
        if not play.files:
            raise PlayError("a play needs at least one file")
        for path in dict.fromkeys(play.files):
            check_file(path)
        self.call_id = play.call_id
        self.operation_id = play.operation_id
        self.files = play.files
        self.loop = play.loop
        self.index = 0
        self.started = False  # PlayStarted sent: the player transmits into the call
        self._eofs = eofs
        self.token = 0
        self.player = self._open(0)

    def _open(self, index: int) -> _FilePlayer:
        token = next(_tokens)
        eofs = self._eofs
        player = _FilePlayer(lambda: eofs.append(token))
        try:
            player.createPlayer(self.files[index], pj.PJMEDIA_FILE_NO_LOOP)
        except pj.Error as exc:
            raise PlayError(f"cannot play {self.files[index]}: {exc.info()}") from exc
        self.token = token
        return player

    def advance(self) -> tuple[_FilePlayer, _FilePlayer] | None:
        """Open the next file: (old player, new player), or None when the play is over."""
        index = next_index(self.index, len(self.files), self.loop)
        if index is None:
            return None
        old, self.player = self.player, self._open(index)
        self.index = index
        return old, self.player
