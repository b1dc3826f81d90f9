"""The in-band DTMF detector: synthesised key sequences are found exactly; tones that are not
DTMF keys (single tones, silence, noise, speech-like harmonics) give nothing; the cut of the
audio into frames changes nothing."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sip.dtmf_detector import HIGH, KEYS, LOW, SAMPLE_RATE, Digit, DtmfDetector

ZERO_DBM0_PEAK = 22713.0  # a 0 dBm0 sine in 16-bit linear PCM
KEY_LIST = "".join(KEYS)


def sine(freq: float, level_dbm0: float, count: int, phase: float = 0.0) -> np.ndarray:
    n = np.arange(count)
    return ZERO_DBM0_PEAK * 10 ** (level_dbm0 / 20) * np.sin(2 * np.pi * freq * n / SAMPLE_RATE + phase)


def pcm(signal: np.ndarray) -> bytes:
    return np.clip(np.round(signal), -32768, 32767).astype("<i2").tobytes()


def detect(audio: bytes, frame: int = 320) -> list[Digit]:
    detector = DtmfDetector()
    found: list[Digit] = []
    for start in range(0, len(audio), frame):
        found += detector.feed(audio[start : start + frame])
    return found + detector.flush()


press = st.fixed_dictionaries(
    {
        "key": st.sampled_from(KEY_LIST),
        "ms": st.integers(45, 250),
        "pause_ms": st.integers(45, 200),
        "level": st.floats(-25, -4),  # the low tone, dBm0
        "twist": st.floats(-6, 4),  # high tone minus low tone, dB
        "offset": st.floats(-0.015, 0.015),  # frequency error of both tones
        "phases": st.tuples(st.floats(0, 6.28), st.floats(0, 6.28)),
    }
)


def key_sequence(
    presses: list[dict[str, object]], lead_ms: int, noise_db: float, seed: int
) -> tuple[bytes, list[tuple[str, int, int]]]:
    parts, truth, at = [np.zeros(lead_ms * 8)], [], lead_ms * 8
    for p in presses:
        row = next(i for i, keys in enumerate(KEYS) if p["key"] in keys)
        col = KEYS[row].index(p["key"])  # type: ignore[arg-type]
        count = p["ms"] * 8  # type: ignore[operator]
        level, twist, offset = p["level"], p["twist"], p["offset"]
        low_phase, high_phase = p["phases"]  # type: ignore[misc]
        tone = sine(LOW[row] * (1 + offset), level, count, low_phase) + sine(  # type: ignore[operator]
            HIGH[col] * (1 + offset),
            level + twist,
            count,
            high_phase,  # type: ignore[operator]
        )
        parts += [tone, np.zeros(p["pause_ms"] * 8)]  # type: ignore[operator]
        truth.append((p["key"], at, at + count))
        at += count + p["pause_ms"] * 8  # type: ignore[operator]
    signal = np.concatenate(parts)
    rng = np.random.default_rng(seed)
    # White noise noise_db below a -25 dBm0 tone's power, whatever the keys' levels.
    noise_rms = ZERO_DBM0_PEAK * 10 ** (-25 / 20) / np.sqrt(2) * 10 ** (-noise_db / 20)
    return pcm(signal + rng.normal(0, noise_rms, signal.size)), truth  # type: ignore[return-value]


@settings(max_examples=60, deadline=None)
@given(
    presses=st.lists(press, min_size=1, max_size=6),
    lead_ms=st.integers(0, 100),
    noise_db=st.floats(15, 40),
    seed=st.integers(0, 2**32 - 1),
    frame=st.integers(1, 700),
)
def test_key_sequences_are_found_exactly_at_any_frame_size(
    presses: list[dict[str, object]], lead_ms: int, noise_db: float, seed: int, frame: int
) -> None:
    audio, truth = key_sequence(presses, lead_ms, noise_db, seed)
    found = detect(audio, frame * 2)
    assert [d.digit for d in found] == [key for key, _, _ in truth]
    for digit, (_, start, end) in zip(found, truth, strict=True):
        assert abs(digit.start - start) <= 120, (digit, start)  # 15 ms
        assert abs(digit.end - end) <= 120, (digit, end)
    assert detect(audio, 320) == found  # the cut into frames changes nothing


@settings(max_examples=60, deadline=None)
@given(freq=st.floats(300, 3400), level=st.floats(-40, 0), ms=st.integers(20, 1000))
def test_a_single_tone_is_no_key(freq: float, level: float, ms: int) -> None:
    assert detect(pcm(sine(freq, level, ms * 8))) == []


@settings(max_examples=30, deadline=None)
@given(rms=st.floats(0, 12000), seed=st.integers(0, 2**32 - 1), ms=st.integers(0, 1000))
def test_silence_and_white_noise_are_no_key(rms: float, seed: int, ms: int) -> None:
    noise = np.random.default_rng(seed).normal(0, rms, ms * 8)
    assert detect(pcm(noise)) == []


@settings(max_examples=60, deadline=None)
@given(
    f0=st.floats(80, 300),
    vibrato=st.floats(0, 0.05),
    amplitudes=st.lists(st.floats(0.5, 1.0), min_size=6, max_size=12),
    level=st.floats(-30, -3),
    ms=st.integers(100, 800),
)
def test_speech_like_harmonics_are_no_key(
    f0: float, vibrato: float, amplitudes: list[float], level: float, ms: int
) -> None:
    """A voiced sound: a gliding pitch and several harmonics of comparable strength."""
    n = np.arange(ms * 8)
    pitch = f0 * (1 + vibrato * np.sin(2 * np.pi * 5 * n / SAMPLE_RATE))
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    harmonics = [a * np.sin(k * phase) for k, a in enumerate(amplitudes, start=1) if k * f0 < 3400]
    signal = np.sum(harmonics, axis=0)
    signal *= ZERO_DBM0_PEAK * 10 ** (level / 20) / max(np.abs(signal).max(), 1e-9)
    assert detect(pcm(signal)) == []


def test_too_short_tones_and_far_off_frequencies_are_no_key() -> None:
    def key(ms: int, offset: float = 0.0) -> bytes:
        tone = sine(770 * (1 + offset), -10, ms * 8) + sine(1336 * (1 + offset), -10, ms * 8)
        return pcm(np.concatenate((tone, np.zeros(800))))

    assert [d.digit for d in detect(key(40))] == ["5"]
    assert detect(key(20)) == []
    assert [d.digit for d in detect(key(100, 0.02))] == ["5"]
    assert detect(key(100, 0.035)) == []
    assert detect(key(100, -0.035)) == []


def test_a_short_drop_inside_a_key_is_one_press_a_pause_is_two() -> None:
    tone = sine(852, -10, 480) + sine(1477, -10, 480)

    def with_gap(ms: int) -> bytes:
        return pcm(np.concatenate((tone, np.zeros(ms * 8), tone, np.zeros(800))))

    assert [d.digit for d in detect(with_gap(10))] == ["9"]
    assert [d.digit for d in detect(with_gap(40))] == ["9", "9"]


def test_a_key_is_reported_about_35_ms_after_it_ends() -> None:
    detector = DtmfDetector()
    tone = sine(941, -10, 800) + sine(1633, -10, 800)
    assert detector.feed(pcm(tone)) == []
    silence, waited = pcm(np.zeros(8)), 0
    while not detector.feed(silence):
        waited += 1
    assert waited <= 40, waited  # ms of silence fed before the key came out
