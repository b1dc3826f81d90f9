"""FileSource prepared from a real HTTPS server (the test CA): the WAV that comes out is 8 kHz
mono 16-bit and carries the input's signal; failures are ACS's PlayFailed codes."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from gateway.calls.play_fetch import FetchLimits
from gateway.calls.play_sources import (
    PlaySource,
    PlaySourceFailed,
    PlaySourcePreparer,
    PreparerSettings,
    parse_play_sources,
)
from gateway.core.tls import TlsFiles
from tests.gateway.events.harness import make_tls

from .play_audio_support import (
    ALIAS_TONE,
    FileServer,
    Route,
    band_level,
    best_correlation,
    encode,
    local_resolver,
    read_output,
    running_file_server,
    stereo,
    timed,
    tones,
)

MAX_BYTES = 400_000
HOSTS = {"localhost": "127.0.0.1", "private.example": "10.1.2.3", "public.example": "93.184.216.34"}


@functools.cache
def _routes() -> dict[str, Route]:
    hum = 0.3 * np.sin(2 * np.pi * 700 * np.arange(16000 * 3) / 16000)  # opposite in each channel
    wide = tones(16000, 3.0, with_alias=True)
    big = encode(tones(44100, 6.0), 44100, "WAV", "PCM_16")  # ~530 kB
    assert len(big) > MAX_BYTES
    return {
        "/stereo16k.wav": Route(encode(stereo(wide + hum, wide - hum) * 0.8, 16000, "WAV", "PCM_16")),
        "/ulaw.wav": Route(encode(tones(8000, 3.0), 8000, "WAV", "ULAW")),
        "/alaw.wav": Route(encode(tones(8000, 3.0), 8000, "WAV", "ALAW")),
        "/u8-11k.wav": Route(encode(tones(11025, 3.0), 11025, "WAV", "PCM_U8")),
        "/tone.mp3": Route(
            encode(stereo(tones(44100, 3.0), tones(44100, 3.0)), 44100, "MP3"), content_type="audio/mpeg"
        ),
        "/other.mp3": Route(encode(tones(22050, 2.0), 22050, "MP3"), content_type="audio/mpeg"),
        "/tone.flac": Route(encode(tones(16000, 1.0), 16000, "FLAC"), content_type="audio/flac"),
        "/corrupt.wav": Route(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8),
        "/notes.txt": Route(b"this is not audio\n" * 100, content_type="text/plain"),
        "/slow.wav": Route(encode(tones(8000, 1.0), 8000, "WAV", "PCM_16"), delay=10.0),
        "/big.wav": Route(big),
        "/big-streamed.wav": Route(big, send_length=False),
        "/moved": Route(status=302, location="/tone.mp3"),
        "/held.wav": Route(encode(tones(8000, 2.0), 8000, "WAV", "PCM_16"), delay=0.5),
    }


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("play-tls"))


@pytest.fixture
def server(tls: TlsFiles) -> Iterator[FileServer]:
    with running_file_server(tls, dict(_routes())) as running:
        yield running


def make_preparer(
    tmp: Path, tls: TlsFiles, allowed: tuple[str, ...] = ("127.0.0.0/8",), max_seconds: float = 600
) -> PlaySourcePreparer:
    settings = PreparerSettings(
        cache_dir=tmp / "play-cache",
        cache_max_bytes=64 * 1024 * 1024,
        fetch=FetchLimits(timeout_seconds=1.5, connect_timeout_seconds=1.0, max_bytes=MAX_BYTES),
        max_seconds=max_seconds,
        speech_timeout_seconds=10,
        default_language="en-us",
        allowed_networks=allowed,
        ca_bundle=tls.ca_file,
    )
    return PlaySourcePreparer(settings, resolver=local_resolver(HOSTS))


@pytest.fixture
def preparer(tmp_path: Path, tls: TlsFiles) -> PlaySourcePreparer:
    return make_preparer(tmp_path, tls)


def file_source(url: str, cache_id: str | None = None) -> PlaySource:
    body: dict[str, object] = {"kind": "file", "file": {"uri": url}}
    if cache_id is not None:
        body["playSourceCacheId"] = cache_id
    [source] = parse_play_sources([body])
    return source


def failure(preparer: PlaySourcePreparer, url: str) -> PlaySourceFailed:
    with pytest.raises(PlaySourceFailed) as caught:
        preparer.prepare(file_source(url))
    return caught.value


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# Conversion -------------------------------------------------------------------------------------


def test_16k_stereo_wav_becomes_8k_mono_with_the_same_signal(
    preparer: PlaySourcePreparer, server: FileServer
) -> None:
    output = read_output(preparer.prepare(file_source(server.url("/stereo16k.wav"))))
    assert len(output) == pytest.approx(8000 * 3, abs=16)
    assert best_correlation(output, tones(8000, 3.0) * 0.8, max_lag=50) > 0.98
    # the channels were mixed (the 700 Hz hum, opposite in each, cancels) ...
    assert band_level(output, 8000, 700) < 0.01
    # ... and the 6 kHz tone was filtered before decimation, not folded onto 2 kHz
    assert band_level(output, 8000, 8000 - ALIAS_TONE) < 0.005
    assert band_level(output, 8000, 440) > 0.15


@pytest.mark.parametrize(("path", "rate"), [("/ulaw.wav", 8000), ("/alaw.wav", 8000), ("/u8-11k.wav", 11025)])
def test_g711_and_8_bit_wav_keep_their_signal(
    preparer: PlaySourcePreparer, server: FileServer, path: str, rate: int
) -> None:
    output = read_output(preparer.prepare(file_source(server.url(path))))
    assert len(output) == pytest.approx(8000 * 3, abs=16)
    assert best_correlation(output, tones(8000, 3.0), max_lag=50) > 0.97


def test_mp3_is_decoded_and_keeps_its_signal(preparer: PlaySourcePreparer, server: FileServer) -> None:
    output = read_output(preparer.prepare(file_source(server.url("/tone.mp3"))))
    assert len(output) == pytest.approx(8000 * 3, rel=0.1)
    assert best_correlation(output, tones(8000, 3.0)) > 0.95
    assert np.sqrt(np.mean(output**2)) > 0.1  # not silence


def test_a_redirect_is_followed_through_the_guard(preparer: PlaySourcePreparer, server: FileServer) -> None:
    output = read_output(preparer.prepare(file_source(server.url("/moved"))))
    assert best_correlation(output, tones(8000, 3.0)) > 0.95
    assert server.count("/moved") == 1
    assert server.count("/tone.mp3") == 1


# Failures ---------------------------------------------------------------------------------------


def test_a_404_is_download_failed(preparer: PlaySourcePreparer, server: FileServer) -> None:
    failed = failure(preparer, server.url("/nothing-here.wav"))
    assert (failed.code, failed.subcode) == (400, 8536)
    assert "404" in failed.message


def test_a_slow_server_times_out_as_download_failed(preparer: PlaySourcePreparer, server: FileServer) -> None:
    failures: list[PlaySourceFailed] = []
    elapsed = timed(lambda: failures.append(failure(preparer, server.url("/slow.wav"))))
    [failed] = failures
    assert (failed.code, failed.subcode) == (400, 8536)
    assert "longer than" in failed.message
    assert elapsed < 4.0  # the 1.5 s bound, not the server's 10 s


@pytest.mark.parametrize("path", ["/big.wav", "/big-streamed.wav"])
def test_an_oversized_file_is_download_failed(
    preparer: PlaySourcePreparer, server: FileServer, path: str
) -> None:
    failed = failure(preparer, server.url(path))
    assert (failed.code, failed.subcode) == (400, 8536)
    assert f"{MAX_BYTES} bytes" in failed.message


def test_a_private_address_is_refused_before_any_connection(
    preparer: PlaySourcePreparer, server: FileServer
) -> None:
    failed = failure(preparer, server.url("/ulaw.wav", host="private.example"))
    assert (failed.code, failed.subcode) == (400, 8536)
    assert "private address (10.1.2.3)" in failed.message
    assert "TRUNKLINE_WEBHOOK_ALLOWED_NETWORKS" in failed.message


def test_loopback_is_refused_unless_the_allow_list_has_it(
    tmp_path: Path, tls: TlsFiles, server: FileServer
) -> None:
    guarded = make_preparer(tmp_path, tls, allowed=())
    failed = failure(guarded, server.url("/ulaw.wav"))
    assert (failed.code, failed.subcode) == (400, 8536)
    assert "loopback" in failed.message
    assert server.count() == 0  # refused at connect time: no request was made


def test_plain_http_inside_the_allow_list_is_fetched(preparer: PlaySourcePreparer) -> None:
    with running_file_server(None, dict(_routes())) as plain:
        output = read_output(preparer.prepare(file_source(plain.url("/ulaw.wav", scheme="http"))))
    assert best_correlation(output, tones(8000, 3.0), max_lag=50) > 0.97
    assert plain.count("/ulaw.wav") == 1


def test_plain_http_outside_the_allow_list_is_refused(preparer: PlaySourcePreparer) -> None:
    failed = failure(preparer, "http://public.example/prompt.wav")
    assert (failed.code, failed.subcode) == (400, 8536)
    assert "https://" in failed.message


@pytest.mark.parametrize(
    ("path", "says"),
    [("/corrupt.wav", "Not a WAV or MP3"), ("/notes.txt", "Not a WAV or MP3"), ("/tone.flac", "FLAC")],
)
def test_what_is_not_wav_or_mp3_is_unsupported_format(
    preparer: PlaySourcePreparer, server: FileServer, path: str, says: str
) -> None:
    failed = failure(preparer, server.url(path))
    assert (failed.code, failed.subcode) == (400, 8535)
    assert says in failed.message
    assert "object at 0x" not in failed.message
    assert not list(preparer.cache.directory.glob("*.wav"))  # nothing half-written is kept


def test_audio_longer_than_the_bound_is_unsupported(
    tmp_path: Path, tls: TlsFiles, server: FileServer
) -> None:
    short = make_preparer(tmp_path, tls, max_seconds=2)
    failed = failure(short, server.url("/tone.mp3"))  # 3 s
    assert (failed.code, failed.subcode) == (400, 8535)
    assert "longer than 2 seconds" in failed.message


# The cache --------------------------------------------------------------------------------------


def test_a_second_prepare_does_no_request(preparer: PlaySourcePreparer, server: FileServer) -> None:
    hits = metric("trunkline_play_source_cache_hits_total", kind="file")
    first = preparer.prepare(file_source(server.url("/ulaw.wav")))
    second = preparer.prepare(file_source(server.url("/ulaw.wav")))
    assert first == second
    assert server.count("/ulaw.wav") == 1
    assert metric("trunkline_play_source_cache_hits_total", kind="file") == hits + 1


def test_the_cache_id_names_the_media_whatever_the_url(
    preparer: PlaySourcePreparer, server: FileServer
) -> None:
    first = preparer.prepare(file_source(server.url("/tone.mp3"), cache_id="welcome"))
    again = preparer.prepare(file_source(server.url("/other.mp3"), cache_id="welcome"))
    assert again == first
    assert server.count("/other.mp3") == 0
    other_tenant = preparer.prepare(file_source(server.url("/other.mp3"), cache_id="welcome"), scope="r2")
    assert other_tenant != first
    assert server.count("/other.mp3") == 1


def test_two_concurrent_prepares_fetch_once(preparer: PlaySourcePreparer, server: FileServer) -> None:
    source = file_source(server.url("/held.wav"))
    results: list[Path] = []

    def prepare() -> None:
        results.append(preparer.prepare(source))

    threads = [threading.Thread(target=prepare) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(results) == 3
    assert len(set(results)) == 1
    assert server.count("/held.wav") == 1
