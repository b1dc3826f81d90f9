"""CPU of in-band DTMF detection per 20 ms frame: the numpy detector vs a pure-Python Goertzel.

    .venv/bin/python -m bench.dtmf_detector [--seconds 20]

Both analyse the same audio (speech-like noise with keys) on the same 10 ms grid of 20 ms
blocks; the worker feeds 2 frames at a time (sip.worker.dtmf.FEED_FRAMES). Prints us per frame
and the share of a core that 200 calls would take.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from sip.dtmf_detector import BLOCK, HIGH, HOP, LOW, SAMPLE_RATE, DtmfDetector
from sip.worker.dtmf import FEED_FRAMES

FRAME_BYTES = 320  # 20 ms of 16-bit samples


def audio(seconds: float) -> bytes:
    rng = np.random.default_rng(1)
    n = np.arange(int(seconds * SAMPLE_RATE))
    signal = rng.normal(0, 800, n.size) + 3000 * np.sin(2 * np.pi * 770 * n / SAMPLE_RATE) * (n % 4000 < 800)
    signal += 3000 * np.sin(2 * np.pi * 1336 * n / SAMPLE_RATE) * (n % 4000 < 800)
    return np.clip(signal, -32768, 32767).astype("<i2").tobytes()


def goertzel_blocks(samples: list[float]) -> int:
    """The 8 Goertzel powers of each block; what a pure-Python detector must at least compute."""
    coefficients = [2 * math.cos(2 * math.pi * f / SAMPLE_RATE) for f in (*LOW, *HIGH)]
    blocks = 0
    for start in range(0, len(samples) - BLOCK + 1, HOP):
        block = samples[start : start + BLOCK]
        for coefficient in coefficients:
            s1 = s2 = 0.0
            for x in block:
                s1, s2 = x + coefficient * s1 - s2, s1
            _ = s1 * s1 + s2 * s2 - coefficient * s1 * s2
        blocks += 1
    return blocks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    data = audio(args.seconds)
    frames = len(data) // FRAME_BYTES
    chunk = FRAME_BYTES * FEED_FRAMES
    detector = DtmfDetector()
    started = time.process_time()
    for start in range(0, len(data), chunk):
        detector.feed(data[start : start + chunk])
    numpy_us = (time.process_time() - started) / frames * 1e6
    samples = np.frombuffer(data[: FRAME_BYTES * 50], dtype="<i2").astype(float).tolist()
    started = time.process_time()
    goertzel_blocks(samples)
    python_us = (time.process_time() - started) / 50 * 1e6
    for name, us in (("numpy detector", numpy_us), ("pure-Python Goertzel (8 tones only)", python_us)):
        share = us * 50 * 200 / 1e6
        per_second = us * 50 / 1000
        print(f"{name}: {us:.1f} us/frame, {per_second:.2f} ms/call-second, 200 calls: {share:.0%} of a core")


if __name__ == "__main__":
    main()
