"""Audio for the SIP worker: any accepted input made into 8 kHz mono 16-bit PCM WAV.

Decoding is libsndfile's (the ``soundfile`` wheel bundles it, with its MP3 decoder):
WAV of PCM 8/16/24/32-bit, float, G.711 mu-law and A-law, at any rate, mono or stereo, and MP3.
Resampling is libsoxr's (``soxr``, "HQ"), which filters what lies above 4 kHz before it
drops to 8 kHz; miniaudio's linear resampler, measured on the same MP3, folded a 6 kHz tone
back to 2 kHz at -16 dB against -114 dB here (docs/calls.md, "Play sources").
Everything else, and anything libsndfile cannot read, is ``UnsupportedAudio``.
"""

from __future__ import annotations

import io
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile
import soxr

TELEPHONY_RATE = 8000

# (format, subtypes) of libsndfile that are played; WAVEX is WAV with an extensible header.
ACCEPTED_FORMATS = {
    "WAV": {"PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"},
    "WAVEX": {"PCM_U8", "PCM_S8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"},
    "MP3": {"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"},
}
MAX_CHANNELS = 2


def _reason(exc: Exception) -> str:
    """libsndfile's own words, without the Python object it was reading from."""
    reason = getattr(exc, "error_string", None) or str(exc)
    return str(reason).split(">: ", 1)[-1]


class UnsupportedAudio(ValueError):
    """Not audio Trunkline plays: another format, a corrupt file, or too long."""


@dataclass(frozen=True, slots=True)
class Converted:
    seconds: float
    input_format: str  # "WAV/ULAW 8000 Hz x1", for logs


def _read(data: bytes, max_seconds: float) -> tuple[npt.NDArray[np.float32], int, str]:
    try:
        info = soundfile.info(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise UnsupportedAudio(f"not a WAV or MP3 file ({_reason(exc)})") from None
    subtypes = ACCEPTED_FORMATS.get(info.format)
    if subtypes is None:
        raise UnsupportedAudio(f"{info.format} files are not played: use WAV or MP3")
    if info.subtype not in subtypes:
        raise UnsupportedAudio(f"{info.format} of {info.subtype} samples is not played")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise UnsupportedAudio(f"{info.channels} channels: mono or stereo only")
    described = f"{info.format}/{info.subtype} {info.samplerate} Hz x{info.channels}"
    if info.frames > max_seconds * info.samplerate:
        raise UnsupportedAudio(f"the audio is longer than {max_seconds:g} seconds")
    try:
        # MP3's frame count is an estimate: read at most a little past the bound, then check.
        samples, rate = soundfile.read(
            io.BytesIO(data),
            dtype="float32",
            always_2d=True,
            frames=int(max_seconds * info.samplerate) + 1,
        )
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise UnsupportedAudio(f"the file is corrupt ({_reason(exc)})") from None
    if samples.shape[0] == 0:
        raise UnsupportedAudio("the file has no audio")
    if samples.shape[0] > max_seconds * rate:
        raise UnsupportedAudio(f"the audio is longer than {max_seconds:g} seconds")
    mono: npt.NDArray[np.float32] = samples.mean(axis=1, dtype=np.float32)
    return mono, int(rate), described


def to_telephony_pcm(data: bytes, max_seconds: float) -> tuple[bytes, Converted]:
    """The 16-bit little-endian samples at 8 kHz mono of an accepted file, or UnsupportedAudio."""
    mono, rate, described = _read(data, max_seconds)
    if rate != TELEPHONY_RATE:
        mono = soxr.resample(mono, rate, TELEPHONY_RATE, quality="HQ")
    pcm = (np.clip(mono, -1.0, 1.0) * 32767.0).round().astype("<i2")
    return pcm.tobytes(), Converted(seconds=len(pcm) / TELEPHONY_RATE, input_format=described)


def write_wav(pcm: bytes, path: Path) -> None:
    """``pcm`` (16-bit, 8 kHz, mono) as a canonical 44-byte-header WAV at ``path``, fsynced."""
    with open(path, "wb") as handle:
        with wave.open(handle, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(TELEPHONY_RATE)
            out.writeframes(pcm)
        handle.flush()
        os.fsync(handle.fileno())
