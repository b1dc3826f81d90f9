"""Speaking text and SSML with espeak-ng (the Debian package ``espeak-ng``), bounded in time.

The text goes on standard input, never on the command line (no option injection, no argument
length limit); SSML goes through espeak-ng's SSML mode (``-m``), which honours
``<prosody rate|pitch|volume>``, ``<break>``, ``<say-as>`` and ``xml:lang``. espeak-ng writes
a 22.05 kHz WAV that :mod:`gateway.calls.play_audio` makes 8 kHz like any other file.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

ESPEAK = "espeak-ng"


class SpeechFailed(Exception):
    """espeak-ng could not speak the text; ``timed_out`` when it ran past its bound, ``empty``
    when it ran but said nothing (markup without words)."""

    def __init__(self, message: str, *, timed_out: bool = False, empty: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.empty = empty


class Speaker:
    """Runs espeak-ng; thread-safe."""

    def __init__(self, timeout_seconds: float, binary: str | None = None) -> None:
        self.timeout_seconds = timeout_seconds
        self.binary = binary or shutil.which(ESPEAK)
        self._languages: frozenset[str] | None = None
        self._lock = threading.Lock()

    def _require(self) -> str:
        if self.binary is None:
            raise SpeechFailed(
                "espeak-ng is not installed on the gateway (Debian package espeak-ng; see docs/calls.md)"
            )
        return self.binary

    def languages(self) -> frozenset[str]:
        """The languages espeak-ng has voices for (``en-us``, ``fr-fr``, ``de``...), read once."""
        with self._lock:
            if self._languages is None:
                binary = self._require()
                try:
                    listing = subprocess.run(  # noqa: S603 - fixed arguments
                        [binary, "--voices"],
                        capture_output=True,
                        text=True,
                        timeout=self.timeout_seconds,
                        check=True,
                    ).stdout
                except (OSError, subprocess.SubprocessError) as exc:
                    raise SpeechFailed(f"espeak-ng --voices failed: {exc}") from None
                rows = [line.split() for line in listing.splitlines()[1:]]
                self._languages = frozenset(row[1].lower() for row in rows if len(row) > 1)
            return self._languages

    def speak(self, text: str, voice: str, *, ssml: bool) -> bytes:
        """The WAV espeak-ng makes of ``text`` in ``voice``."""
        binary = self._require()
        with tempfile.TemporaryDirectory(prefix="trunkline-espeak-") as directory:
            out = Path(directory) / "speech.wav"
            command = [binary, "--stdin", "-v", voice, "-w", str(out)]
            if ssml:
                command.insert(1, "-m")
            try:
                result = subprocess.run(  # noqa: S603 - the text is on stdin, the voice is ours
                    command,
                    input=text.encode(),
                    capture_output=True,
                    timeout=self.timeout_seconds,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise SpeechFailed(
                    f"espeak-ng took longer than {self.timeout_seconds:g} s", timed_out=True
                ) from None
            except OSError as exc:
                raise SpeechFailed(f"espeak-ng could not run: {exc}") from None
            stderr = result.stderr.decode(errors="replace").strip()
            if result.returncode != 0:
                raise SpeechFailed(f"espeak-ng failed ({result.returncode}): {stderr[:200]}")
            if not out.exists() or out.stat().st_size <= 44:
                raise SpeechFailed(f"espeak-ng produced no audio {stderr[:200]}".strip(), empty=True)
            return out.read_bytes()
