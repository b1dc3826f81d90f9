"""Benchmark of play-source preparation: what a cache miss costs the SIP process.

    python -m bench.play_sources [--seconds 10] [--repeat 5]

Times, median of REPEAT runs: decoding a SECONDS-long 44.1 kHz stereo MP3 (made here with
libsndfile) to 8 kHz mono WAV samples, the same for a 16 kHz WAV, and espeak-ng speaking one
sentence (the process, its 22.05 kHz WAV read back, resampled to 8 kHz). Prints JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import soundfile

from gateway.calls.play_audio import to_telephony_pcm
from gateway.calls.play_speech import Speaker

SENTENCE = "Thank you for calling. For sales, press one. For support, press two."


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def _signal(rate: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1000 * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def _encode(signal: np.ndarray, rate: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, rate, format=fmt)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    mp3 = _encode(_signal(44100, args.seconds, 2), 44100, "MP3")
    wav = _encode(_signal(16000, args.seconds, 1), 16000, "WAV")
    speaker = Speaker(timeout_seconds=30)

    def speak() -> None:
        to_telephony_pcm(speaker.speak(SENTENCE, "en-us", ssml=False), 600)

    spoken, converted = to_telephony_pcm(speaker.speak(SENTENCE, "en-us", ssml=False), 600)
    print(
        json.dumps(
            {
                "mp3_seconds": args.seconds,
                "mp3_bytes": len(mp3),
                "mp3_to_8k_ms": _median_ms(lambda: to_telephony_pcm(mp3, 600), args.repeat),
                "wav16k_to_8k_ms": _median_ms(lambda: to_telephony_pcm(wav, 600), args.repeat),
                "espeak_sentence_ms": _median_ms(speak, args.repeat),
                "espeak_sentence_audio_seconds": round(converted.seconds, 2),
                "espeak_sentence_bytes_8k": len(spoken),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
