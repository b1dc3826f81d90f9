"""Audio for the media tests: tones, WAV files, G.711 (A-law, mu-law) and tone measurement.

Pure Python (no numpy on the test machines): G.711 per ITU-T G.711's segment tables, Goertzel
for the power of one frequency, a normalised cross-correlation to find a prompt in a recording.
"""

from __future__ import annotations

import math
import struct
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path

RATE = 8000
FRAME = 160  # samples per 20 ms RTP packet


def tone(freq: float, seconds: float, amplitude: int = 8000) -> list[int]:
    count = int(RATE * seconds)
    return [int(amplitude * math.sin(2 * math.pi * freq * i / RATE)) for i in range(count)]


def write_wav(path: Path, samples: Sequence[int], rate: int = RATE, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples for _ in range(channels)))
    return path


def _alaw_decode(code: int) -> int:
    code ^= 0x55
    exponent, mantissa = (code >> 4) & 7, code & 0x0F
    magnitude = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return magnitude if code & 0x80 else -magnitude


def _alaw_encode(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(sample if sample >= 0 else -sample - 1, 32767) >> 3  # 13-bit
    if magnitude < 32:
        exponent, mantissa = 0, magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        mantissa = (magnitude >> exponent) & 0x0F
    return (sign | (exponent << 4) | mantissa) ^ 0x55


def _ulaw_decode(code: int) -> int:
    code = ~code & 0xFF
    exponent, mantissa = (code >> 4) & 7, code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -magnitude if code & 0x80 else magnitude


ALAW_DECODE = [_alaw_decode(code) for code in range(256)]
ULAW_DECODE = [_ulaw_decode(code) for code in range(256)]
PCMU, PCMA = 0, 8  # RTP payload types


def alaw_encode(samples: Iterable[int]) -> bytes:
    return bytes(_alaw_encode(s) for s in samples)


def g711_decode(payload_type: int, payload: bytes) -> list[int]:
    table = ALAW_DECODE if payload_type == PCMA else ULAW_DECODE
    return [table[byte] for byte in payload]


def goertzel(samples: Sequence[int], freq: float) -> float:
    """Power of ``freq`` in the block, normalised so a full-scale sine of amplitude A gives ~A²/4."""
    coeff = 2 * math.cos(2 * math.pi * freq / RATE)
    prev = prev2 = 0.0
    for sample in samples:
        prev, prev2 = sample + coeff * prev - prev2, prev
    power = prev * prev + prev2 * prev2 - coeff * prev * prev2
    return power / (len(samples) ** 2) if samples else 0.0


def energy(samples: Sequence[int]) -> float:
    """Mean square of the block (a sine of amplitude A gives A²/2)."""
    return sum(s * s for s in samples) / len(samples) if samples else 0.0


def tone_share(samples: Sequence[int], freq: float) -> float:
    """Which part of the block's energy is at ``freq`` (1.0 for a pure tone, ~0 for silence)."""
    total = energy(samples)
    return 2 * goertzel(samples, freq) / total if total > 1.0 else 0.0


def dominant_tones(
    samples: Sequence[int], freqs: Sequence[float], *, share: float = 0.6
) -> list[float | None]:
    """Per 20 ms frame: the frequency of ``freqs`` holding ``share`` of its energy, else None."""
    found: list[float | None] = []
    for start in range(0, len(samples) - FRAME + 1, FRAME):
        block = samples[start : start + FRAME]
        best = max(freqs, key=lambda f: goertzel(block, f))
        found.append(best if energy(block) > 1e4 and tone_share(block, best) >= share else None)
    return found


def runs(items: Sequence[float | None]) -> list[tuple[float | None, int]]:
    """Consecutive equal items collapsed: [(item, count), ...]."""
    collapsed: list[tuple[float | None, int]] = []
    for item in items:
        if collapsed and collapsed[-1][0] == item:
            collapsed[-1] = (item, collapsed[-1][1] + 1)
        else:
            collapsed.append((item, 1))
    return collapsed


def best_correlation(
    recording: Sequence[int], prompt: Sequence[int], lags: Iterable[int]
) -> tuple[float, int]:
    """The highest normalised cross-correlation of ``prompt`` inside ``recording`` over ``lags``."""
    prompt_norm = math.sqrt(sum(s * s for s in prompt)) or 1.0
    best = (0.0, -1)
    for lag in lags:
        window = recording[lag : lag + len(prompt)]
        if len(window) < len(prompt):
            break
        norm = math.sqrt(sum(s * s for s in window))
        if norm == 0:
            continue
        value = sum(a * b for a, b in zip(window, prompt, strict=True)) / (norm * prompt_norm)
        best = max(best, (value, lag))
    return best
