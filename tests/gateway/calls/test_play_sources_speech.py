"""TextSource and SsmlSource spoken by the real espeak-ng (Debian package espeak-ng): speech
that is heard (not silence), of a plausible length, in the voice asked, cached."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from gateway.calls.play_fetch import FetchLimits
from gateway.calls.play_source_rules import PlaySourceKind, speech_cache_key
from gateway.calls.play_sources import (
    PlaySource,
    PlaySourceFailed,
    PlaySourcePreparer,
    PreparerSettings,
    parse_play_sources,
)
from gateway.calls.play_speech import Speaker

from .play_audio_support import band_level, read_output, timed


@pytest.fixture(autouse=True)
def _espeak_installed() -> None:
    # A missing espeak-ng fails these tests instead of skipping them: production needs it.
    assert shutil.which("espeak-ng"), "espeak-ng is not installed (scripts/bootstrap.sh --dev installs it)"


SENTENCE = "Thank you for calling. For sales, press one. For support, press two."


class CountingSpeaker(Speaker):
    def __init__(self, timeout_seconds: float, binary: str | None = None) -> None:
        super().__init__(timeout_seconds, binary)
        self.spoken: list[tuple[str, str, bool]] = []

    def speak(self, text: str, voice: str, *, ssml: bool) -> bytes:
        self.spoken.append((text, voice, ssml))
        return super().speak(text, voice, ssml=ssml)


def make_preparer(tmp: Path, speaker: Speaker) -> PlaySourcePreparer:
    settings = PreparerSettings(
        cache_dir=tmp / "play-cache",
        cache_max_bytes=64 * 1024 * 1024,
        fetch=FetchLimits(timeout_seconds=2, connect_timeout_seconds=1, max_bytes=1_000_000),
        max_seconds=600,
        speech_timeout_seconds=10,
        default_language="en-us",
    )
    return PlaySourcePreparer(settings, speaker=speaker)


@pytest.fixture
def speaker() -> CountingSpeaker:
    return CountingSpeaker(timeout_seconds=10)


@pytest.fixture
def preparer(tmp_path: Path, speaker: CountingSpeaker) -> PlaySourcePreparer:
    return make_preparer(tmp_path, speaker)


def source(body: dict[str, object]) -> PlaySource:
    [parsed] = parse_play_sources([body])
    return parsed


def text(words: str, **extra: str) -> PlaySource:
    return source({"kind": "text", "text": {"text": words, **extra}})


def ssml(inner: str, lang: str = "en-US") -> PlaySource:
    document = (
        f'<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="{lang}">'
        f'<voice name="{lang}-JennyNeural">{inner}</voice></speak>'
    )
    return source({"kind": "ssml", "ssml": {"ssmlText": document}})


def assert_speech(samples: np.ndarray, min_seconds: float, max_seconds: float) -> None:
    seconds = len(samples) / 8000
    assert min_seconds < seconds < max_seconds, seconds
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)  # 20 ms frames
    levels = np.sqrt((frames**2).mean(axis=1))
    voiced = levels > 0.02
    assert voiced.mean() > 0.4, "mostly silence"
    assert (~voiced).any(), "no pauses at all: not speech"
    # voice energy sits in the telephone band, not at DC or a single tone
    assert band_level(samples, 8000, 150) + band_level(samples, 8000, 500) > 0.005


def test_text_is_spoken_as_audible_speech_of_plausible_length(
    preparer: PlaySourcePreparer, speaker: CountingSpeaker
) -> None:
    paths: list[Path] = []
    elapsed = timed(lambda: paths.append(preparer.prepare(text(SENTENCE))))
    samples = read_output(paths[0])  # 8 kHz mono 16-bit, checked there
    # about 13 words: 2.5 to 10 s at any sane speaking rate
    assert_speech(samples, 2.5, 10.0)
    assert speaker.spoken == [(SENTENCE, "en-us", False)]
    assert elapsed < 10


def test_the_second_prepare_speaks_nothing(preparer: PlaySourcePreparer, speaker: CountingSpeaker) -> None:
    first = preparer.prepare(text("Please hold."))
    second = preparer.prepare(text("Please hold."))
    assert first == second
    assert len(speaker.spoken) == 1
    # another voice is another recording
    female = preparer.prepare(text("Please hold.", voiceKind="female"))
    assert female != first
    assert speaker.spoken[-1][1] == "en-us+f3"


def test_locale_and_voice_name_choose_the_espeak_language(
    preparer: PlaySourcePreparer, speaker: CountingSpeaker
) -> None:
    french = preparer.prepare(text("Bonjour et bienvenue.", sourceLocale="fr-FR"))
    assert french.stem == speech_cache_key(PlaySourceKind.TEXT, "Bonjour et bienvenue.", "fr-fr")
    preparer.prepare(text("Guten Tag.", voiceName="de-DE-KatjaNeural", sourceLocale="en-US"))
    assert speaker.spoken[-1][1] == "de"  # the voice's locale wins over sourceLocale


def test_ssml_is_spoken_in_ssml_mode_and_prosody_rate_is_honoured(
    preparer: PlaySourcePreparer, speaker: CountingSpeaker
) -> None:
    words = "Your call is important to us. Please stay on the line."
    slow = read_output(preparer.prepare(ssml(f'<prosody rate="x-slow">{words}</prosody>')))
    fast = read_output(preparer.prepare(ssml(f'<prosody rate="x-fast">{words}</prosody>')))
    assert_speech(slow, 2.0, 15.0)
    assert_speech(fast, 1.0, 10.0)
    assert len(slow) > 1.4 * len(fast)
    assert all(is_ssml for _, _, is_ssml in speaker.spoken)
    # the markup is read, not spoken: a <break> adds silence instead of words
    pause = read_output(preparer.prepare(ssml('One. <break time="2000ms"/> Two.')))
    assert len(pause) / 8000 > 2.0


def test_a_locale_espeak_lacks_is_a_speech_failure(preparer: PlaySourcePreparer) -> None:
    with pytest.raises(PlaySourceFailed) as caught:
        preparer.prepare(text("hello", sourceLocale="xx-YY"))
    assert (caught.value.code, caught.value.subcode) == (400, 8565)
    assert "xx-YY" in caught.value.message


def _fake_espeak(tmp: Path, body: str) -> str:
    script = tmp / "espeak-ng"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--voices" ]; then\n'
        "  echo 'Pty Language Age/Gender VoiceName File Other Languages'\n"
        "  echo ' 2  en-us  --/M  English_(America)  gmw/en-US'\n"
        "  exit 0\n"
        "fi\n" + body
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_espeak_past_its_bound_is_a_timeout(tmp_path: Path) -> None:
    slow = Speaker(timeout_seconds=0.5, binary=_fake_espeak(tmp_path, "exec sleep 5\n"))
    preparer = make_preparer(tmp_path, slow)
    elapsed_box: list[PlaySourceFailed] = []

    def attempt() -> None:
        with pytest.raises(PlaySourceFailed) as caught:
            preparer.prepare(text("hello"))
        elapsed_box.append(caught.value)

    assert timed(attempt) < 3
    assert (elapsed_box[0].code, elapsed_box[0].subcode) == (408, 8565)


def test_espeak_failing_is_a_speech_failure_and_nothing_is_cached(tmp_path: Path) -> None:
    broken = Speaker(timeout_seconds=5, binary=_fake_espeak(tmp_path, "echo 'no voice data' >&2\nexit 1\n"))
    preparer = make_preparer(tmp_path, broken)
    with pytest.raises(PlaySourceFailed) as caught:
        preparer.prepare(text("hello"))
    assert (caught.value.code, caught.value.subcode) == (400, 8565)
    assert "no voice data" in caught.value.message
    assert not list(preparer.cache.directory.glob("*.wav"))


def test_without_espeak_it_is_an_internal_failure(tmp_path: Path) -> None:
    missing = Speaker(timeout_seconds=5, binary=str(tmp_path / "no-such-espeak"))
    with pytest.raises(PlaySourceFailed) as caught:
        make_preparer(tmp_path, missing).prepare(text("hello"))
    assert (caught.value.code, caught.value.subcode) == (500, 9999)


def test_espeak_saying_nothing_is_text_or_ssml_empty(tmp_path: Path) -> None:
    mute = Speaker(timeout_seconds=5, binary=_fake_espeak(tmp_path, "exit 0\n"))
    with pytest.raises(PlaySourceFailed) as caught:
        make_preparer(tmp_path, mute).prepare(ssml('<break time="1s"/>.'))
    assert (caught.value.code, caught.value.subcode) == (400, 8582)
