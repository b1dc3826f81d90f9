"""Test audio for the play-source tests: signals made here, encoded with libsndfile (the
``soundfile`` wheel writes WAV, G.711 WAV, FLAC and MP3), served over HTTPS by a real server
with the test CA, and compared with what comes out."""

from __future__ import annotations

import contextlib
import io
import ssl
import threading
import time
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile

from gateway.core.tls import TlsFiles

Signal = npt.NDArray[np.float64]

# Two tones in the telephone band, and one above 4 kHz that the 8 kHz output must not keep
# (folded back, 6 kHz at 16 kHz rate would land on 2 kHz).
TONES = ((440.0, 0.35), (1000.0, 0.25))
ALIAS_TONE = 6000.0


def tones(rate: int, seconds: float, with_alias: bool = False) -> Signal:
    t = np.arange(int(rate * seconds)) / rate
    # A slow amplitude envelope makes the signal aperiodic, so correlation finds one true lag.
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t)
    signal = sum(amplitude * np.sin(2 * np.pi * f * t) for f, amplitude in TONES) * envelope
    if with_alias:
        signal = signal + 0.25 * np.sin(2 * np.pi * ALIAS_TONE * t)
    return np.asarray(signal, dtype=np.float64)


def encode(signal: Signal, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def stereo(left: Signal, right: Signal) -> Signal:
    return np.stack([left, right], axis=1)


def read_output(path: Path) -> Signal:
    """The samples of a prepared file, after checking it is 8 kHz mono 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as prepared:
        assert prepared.getframerate() == 8000
        assert prepared.getnchannels() == 1
        assert prepared.getsampwidth() == 2
        assert prepared.getcomptype() == "NONE"
        frames = prepared.readframes(prepared.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0


def best_correlation(output: Signal, reference: Signal, max_lag: int = 1600) -> float:
    """The largest normalised correlation of ``output`` with ``reference`` over lags up to
    ``max_lag`` samples (MP3 encoders delay the signal by a frame or so)."""
    n = min(len(output), len(reference)) - max_lag
    assert n > 4000, "too little audio to compare"
    ref = reference[:n] - reference[:n].mean()
    ref = ref / (np.linalg.norm(ref) or 1.0)
    out = output[: n + max_lag]
    # dot(out[lag:lag+n], ref) for every lag at once, and the energy of each window
    dots = np.correlate(out, ref, mode="valid")[: max_lag + 1]
    sums = np.concatenate([[0.0], np.cumsum(out)])
    squares = np.concatenate([[0.0], np.cumsum(out**2)])
    window_sum = sums[n : n + max_lag + 1] - sums[: max_lag + 1]
    window_energy = squares[n : n + max_lag + 1] - squares[: max_lag + 1] - window_sum**2 / n
    norms = np.sqrt(np.maximum(window_energy, 1e-12))
    return float((dots / norms).max())


def band_level(signal: Signal, rate: int, frequency: float) -> float:
    """Amplitude near ``frequency`` (a windowed FFT peak, relative to full scale)."""
    window = np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(signal * window)) / (window.sum() / 2)
    freqs = np.fft.rfftfreq(len(signal), 1 / rate)
    return float(spectrum[(freqs > frequency - 15) & (freqs < frequency + 15)].max())


# A real HTTPS file server ------------------------------------------------------------------------


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "audio/wav"
    delay: float = 0.0  # before the headers
    send_length: bool = True  # False: a close-delimited body without Content-Length
    location: str | None = None


@dataclass
class FileServer:
    port: int
    routes: dict[str, Route]
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "localhost", scheme: str = "https") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def count(self, path: str | None = None) -> int:
        with self.lock:
            return sum(1 for p in self.requests if path is None or p == path)


@contextmanager
def running_file_server(tls: TlsFiles | None, routes: dict[str, Route]) -> Iterator[FileServer]:
    """An HTTPS server with the test CA's certificate; plain HTTP when ``tls`` is None."""
    holder: list[FileServer] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server = holder[0]
            with server.lock:
                server.requests.append(self.path)
            route = server.routes.get(self.path, Route(b"not found", 404, "text/plain"))
            if route.delay:
                server.release.wait(route.delay)
            self.send_response(route.status)
            self.send_header("content-type", route.content_type)
            if route.location:
                self.send_header("location", route.location)
            if route.send_length:
                self.send_header("content-length", str(len(route.body)))
            self.end_headers()
            # the client may give up (over the size cap): what the test wants
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.wfile.write(route.body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    server = FileServer(port=httpd.server_address[1], routes=routes)
    holder.append(server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def local_resolver(mapping: dict[str, str]) -> Callable[[str, int], list[str]]:
    """A resolver answering from ``mapping`` (host -> address): names the tests control."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise OSError(f"unknown host {host}")
        return [mapping[host]]

    return resolve


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started
