"""The media tests' own audio tools must tell a tone from silence and noise, or their proofs are void."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from tests.sip.audio import (
    ALAW_DECODE,
    PCMA,
    alaw_encode,
    best_correlation,
    dominant_tones,
    g711_decode,
    runs,
    tone,
)


@given(st.integers(-32768, 32767))
def test_alaw_round_trip_keeps_the_sample_within_its_segment_step(sample: int) -> None:
    decoded = g711_decode(PCMA, alaw_encode([sample]))[0]
    assert abs(decoded - sample) <= max(16, abs(sample) // 16)


def test_alaw_decodes_the_silence_code_to_near_zero() -> None:
    assert abs(ALAW_DECODE[0xD5]) <= 8


def test_a_tone_sequence_is_found_in_order_and_noise_or_silence_is_not() -> None:
    prompt = tone(600, 0.3) + tone(1100, 0.3) + tone(1700, 0.3)
    heard = g711_decode(PCMA, alaw_encode([0] * 400 + prompt + [0] * 400))
    found = [f for f, count in runs(dominant_tones(heard, [600, 1100, 1700])) if f and count >= 10]
    assert found == [600, 1100, 1700]
    assert best_correlation(heard, prompt, range(300, 500))[0] > 0.95
    noise = [random.randint(-8000, 8000) for _ in range(len(heard))]
    assert [f for f, count in runs(dominant_tones(noise, [600, 1100, 1700])) if f and count >= 3] == []
    assert best_correlation(noise, prompt, range(300, 500))[0] < 0.2
    assert best_correlation([0] * len(heard), prompt, range(300, 500))[0] == 0.0
