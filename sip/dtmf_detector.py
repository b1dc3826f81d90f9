"""In-band DTMF detection (tones in the audio itself): pure, sans-IO, numpy.

Feed 8 kHz 16-bit little-endian PCM in chunks of any size (``DtmfDetector.feed``); each call
returns the digits that ended in it, with their first and last sample. The result does not
depend on how the audio is cut into chunks: analysis blocks sit on a fixed grid of the stream.

How a digit is accepted (the shape of ITU-T Q.24's receiver, figures below):
- every ``HOP`` samples (10 ms) a block of ``BLOCK`` samples (20 ms) is correlated with the 8
  DTMF frequencies, each probed at its nominal value and at +-1.5 % (so a sender off by the
  tolerated 1.5 % loses under 1 dB);
- the block holds a digit when the strongest low-group and high-group tones are each above
  ``MIN_TONE_DBM0``, are ``PEAK_DB`` above the others of their group, their level difference
  (twist) is within ``MAX_NORMAL_TWIST_DB`` / ``MAX_REVERSE_TWIST_DB``, and together they hold
  ``MIN_CONCENTRATION`` of the block's energy (speech, music and noise spread theirs);
- a digit needs ``MIN_HITS`` such blocks (a 40 ms tone always gives 2 whole blocks; a 20 ms
  one at most 1), and ends after ``END_MISSES`` blocks without it (a 40 ms pause gives at
  least 5; a 10 ms drop inside a tone at most 3, so it does not split the digit) or when
  another digit holds ``MIN_HITS`` blocks.
A digit is reported once it ended: ~30-35 ms after the tone stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
BLOCK = 160  # samples per analysis block (20 ms)
HOP = BLOCK // 2  # samples between block starts (10 ms)
LOW = (697.0, 770.0, 852.0, 941.0)
HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")  # KEYS[low][high]
PROBE_OFFSETS = (-0.015, 0.0, 0.015)  # relative frequency offsets probed around each tone

FULL_SCALE_DBM0 = 3.17  # a full-scale 16-bit sine is +3.17 dBm0 (G.711's digital milliwatt)
MIN_TONE_DBM0 = -32.0
PEAK_DB = 8.0
MAX_NORMAL_TWIST_DB = 8.0  # high group weaker than the low group
MAX_REVERSE_TWIST_DB = 6.0  # high group stronger
MIN_CONCENTRATION = 0.8
MIN_HITS = 2
END_MISSES = 4

_FULL_SCALE_POWER = 32767.0**2 / 2  # mean power of a full-scale sine
_MIN_TONE_POWER = _FULL_SCALE_POWER * 10 ** ((MIN_TONE_DBM0 - FULL_SCALE_DBM0) / 10)
_PEAK = 10 ** (PEAK_DB / 10)
_TWIST_LOW = 10 ** (-MAX_NORMAL_TWIST_DB / 10)
_TWIST_HIGH = 10 ** (MAX_REVERSE_TWIST_DB / 10)


def _probe_table() -> npt.NDArray[np.float64]:
    """(BLOCK, 2 x probes): the cosine then the sine column of every probed frequency."""
    n = np.arange(BLOCK)
    freqs = [f * (1 + off) for f in (*LOW, *HIGH) for off in PROBE_OFFSETS]
    phase = 2 * np.pi * np.outer(n, freqs) / SAMPLE_RATE
    return np.ascontiguousarray(np.concatenate((np.cos(phase), np.sin(phase)), axis=1))


_TABLE = _probe_table()
_PROBES = 8 * len(PROBE_OFFSETS)


@dataclass(frozen=True, slots=True)
class Digit:
    """A detected key press: ``start``/``end`` are sample indexes of the stream (end exclusive)."""

    digit: str
    start: int
    end: int

    @property
    def duration_ms(self) -> int:
        return (self.end - self.start) * 1000 // SAMPLE_RATE


def block_digits(blocks: npt.NDArray[np.float64]) -> list[str | None]:
    """The digit each block (rows of ``BLOCK`` samples) holds, or None."""
    spectrum = blocks @ _TABLE
    squares = spectrum * spectrum
    # Mean power of the tone each probe sees (a sine of amplitude A on the probe: A**2 / 2),
    # the best of the probes around each nominal frequency.
    power = (squares[:, :_PROBES] + squares[:, _PROBES:]) * (2.0 / BLOCK**2)
    tones = power.reshape(len(blocks), 8, len(PROBE_OFFSETS)).max(axis=2)
    energy = np.square(blocks).sum(axis=1) / BLOCK
    # The decisions run on a few floats per block: plain Python beats numpy's per-call cost here.
    return [_decide(row, total) for row, total in zip(tones.tolist(), energy.tolist(), strict=True)]


def _decide(tones: list[float], energy: float) -> str | None:
    low, high = tones[:4], tones[4:]
    lp, hp = max(low), max(high)
    if lp < _MIN_TONE_POWER or hp < _MIN_TONE_POWER or lp + hp < MIN_CONCENTRATION * energy:
        return None
    if not _TWIST_LOW * lp <= hp <= _TWIST_HIGH * lp:
        return None
    li, hi = low.index(lp), high.index(hp)
    if any(p * _PEAK > lp for i, p in enumerate(low) if i != li):
        return None
    if any(p * _PEAK > hp for i, p in enumerate(high) if i != hi):
        return None
    return KEYS[li][hi]


class DtmfDetector:
    """The detector of one audio stream; keeps a block's worth of samples between feeds."""

    def __init__(self) -> None:
        self._pending = np.zeros(0, dtype=np.float64)
        self._next_block = 0  # stream index of the next block's first sample
        self._digit: str | None = None
        self._start = self._end = self._hits = self._misses = 0
        self._candidate: str | None = None
        self._candidate_start = self._candidate_hits = 0

    def feed(self, pcm: bytes) -> list[Digit]:
        """Analyse more audio; the digits that ended within it, in order."""
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        self._pending = np.concatenate((self._pending, samples)) if self._pending.size else samples
        count = (self._pending.size - BLOCK) // HOP + 1 if self._pending.size >= BLOCK else 0
        if count <= 0:
            return []
        halves = self._pending[: (count + 1) * HOP].reshape(count + 1, HOP)  # BLOCK is 2 HOPs
        windows = np.concatenate((halves[:-1], halves[1:]), axis=1)
        found: list[Digit] = []
        for result in block_digits(windows):
            self._step(result, found)
            self._next_block += HOP
        self._pending = self._pending[count * HOP :].copy()
        return found

    def flush(self) -> list[Digit]:
        """The stream ended: the digit still held, if long enough."""
        found: list[Digit] = []
        self._finish(found)
        return found

    def _step(self, result: str | None, found: list[Digit]) -> None:
        start, end = self._next_block, self._next_block + BLOCK
        if result is not None and result == self._digit:
            self._hits += 1
            self._misses = 0
            self._end = end
            self._candidate = None
            return
        self._misses += 1
        if result is None:
            self._candidate = None
        elif result == self._candidate:
            self._candidate_hits += 1
        else:
            self._candidate, self._candidate_start, self._candidate_hits = result, start, 1
        replaced = self._candidate is not None and self._candidate_hits >= MIN_HITS
        if self._digit is not None and (self._misses >= END_MISSES or replaced):
            self._finish(found)
        if self._digit is None and self._candidate is not None:
            self._digit, self._start, self._end = self._candidate, self._candidate_start, end
            self._hits, self._misses = self._candidate_hits, 0
            self._candidate = None

    def _finish(self, found: list[Digit]) -> None:
        if self._digit is not None and self._hits >= MIN_HITS:
            found.append(Digit(self._digit, self._start, self._end))
        self._digit = None
        self._hits = self._misses = 0
