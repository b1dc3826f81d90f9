"""A play's file sequence and the check of its files (no endpoint needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.worker.player import PlayError, check_file, next_index
from tests.sip.audio import tone, write_wav


@given(st.integers(1, 6), st.booleans(), st.integers(1, 40))
def test_a_sequence_plays_each_file_in_order_and_loops_only_when_asked(
    count: int, loop: bool, steps: int
) -> None:
    played, index = [0], 0
    for _ in range(steps):
        following = next_index(index, count, loop)
        if following is None:
            break
        played.append(index := following)
    if loop:
        assert played == [i % count for i in range(len(played))]
        assert len(played) == steps + 1  # a loop never ends by itself
    else:
        assert played == list(range(min(count, steps + 1)))


def test_only_8k_mono_16bit_wav_files_pass(tmp_path: Path) -> None:
    check_file(str(write_wav(tmp_path / "ok.wav", tone(440, 0.1))))
    with pytest.raises(PlayError, match="16000 Hz"):
        check_file(str(write_wav(tmp_path / "wide.wav", tone(440, 0.1), rate=16000)))
    with pytest.raises(PlayError, match="2 channel"):
        check_file(str(write_wav(tmp_path / "stereo.wav", tone(440, 0.1), channels=2)))
    with pytest.raises(PlayError, match="cannot open"):
        check_file(str(tmp_path / "missing.wav"))
    (tmp_path / "text.wav").write_text("not a wav")
    with pytest.raises(PlayError, match="cannot open"):
        check_file(str(tmp_path / "text.wav"))
