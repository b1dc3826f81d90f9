"""Play sources made into files the SIP worker plays (``sip.worker.messages.Play.files``).

``parse_play_sources`` reads a request's ``playSources`` (pure, 400s in ACS's shape; in
:mod:`gateway.calls.play_source_rules`). ``PlaySourcePreparer.prepare`` turns one source into
an 8 kHz mono 16-bit PCM WAV in the cache under the data directory, or raises
``PlaySourceFailed`` with ACS's PlayFailed ``resultInformation`` code and subcode:

- ``file``: downloaded behind the webhook SSRF guard (:mod:`gateway.calls.play_fetch`),
  converted once (:mod:`gateway.calls.play_audio`), cached by ``playSourceCacheId`` or URL;
- ``text``/``ssml``: spoken by espeak-ng (:mod:`gateway.calls.play_speech`), cached by what is
  said and the voice.

A second prepare of a source already in the cache neither downloads nor converts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import structlog
from prometheus_client import Counter, Histogram

from gateway.calls.play_audio import UnsupportedAudio, to_telephony_pcm, write_wav
from gateway.calls.play_cache import PlayCache
from gateway.calls.play_fetch import FetchFailed, FetchLimits, FileFetcher
from gateway.calls.play_source_rules import (
    FILE_DOWNLOAD_FAILED,
    FILE_FORMAT_INVALID,
    MAX_PLAY_SOURCES,
    SPEECH_EMPTY,
    SPEECH_REQUEST_INVALID,
    SPEECH_TIMED_OUT,
    UNKNOWN_ERROR,
    FileSource,
    PlaySource,
    PlaySourceFailed,
    PlaySourceKind,
    ResultCode,
    SsmlSource,
    TextSource,
    VoiceKind,
    espeak_language,
    espeak_voice,
    file_cache_key,
    parse_play_sources,
    play_source_body,
    speech_cache_key,
)
from gateway.calls.play_speech import Speaker, SpeechFailed
from gateway.core.metrics import owned_by
from gateway.core.settings import Settings
from gateway.events.ssrf import Policy, Resolver, parse_networks, system_resolver

__all__ = [
    "MAX_PLAY_SOURCES",
    "FileSource",
    "PlaySource",
    "PlaySourceFailed",
    "PlaySourceKind",
    "PlaySourcePreparer",
    "PreparerSettings",
    "SsmlSource",
    "TextSource",
    "VoiceKind",
    "parse_play_sources",
    "play_source_body",
]

log = structlog.get_logger("trunkline.calls.play")

PREPARES = Counter(
    "trunkline_play_source_prepares_total",
    "Play sources prepared into playable files, by kind and outcome "
    "(converted, cache_hit, or the PlayFailed code/subcode)",
    ["kind", "outcome"],
)
CACHE_HITS = Counter(
    "trunkline_play_source_cache_hits_total", "Play sources served from the cache without work", ["kind"]
)
PREPARE_SECONDS = Histogram(
    "trunkline_play_source_prepare_seconds",
    "Time to download or speak, and convert, a play source that was not cached",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
owned_by("sip", PREPARES, CACHE_HITS, PREPARE_SECONDS)


@dataclass(frozen=True, slots=True)
class PreparerSettings:
    cache_dir: Path
    cache_max_bytes: int
    fetch: FetchLimits
    max_seconds: float  # longest prompt accepted, after decoding
    speech_timeout_seconds: float
    default_language: str
    allowed_networks: tuple[str, ...] = ()
    ca_bundle: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> PreparerSettings:
        return cls(
            cache_dir=settings.play_cache_dir,
            cache_max_bytes=settings.play_cache_max_bytes,
            fetch=FetchLimits(
                timeout_seconds=settings.play_fetch_timeout_seconds,
                connect_timeout_seconds=settings.play_fetch_connect_timeout_seconds,
                max_bytes=settings.play_max_download_bytes,
            ),
            max_seconds=settings.play_max_seconds,
            speech_timeout_seconds=settings.play_speech_timeout_seconds,
            default_language=settings.play_speech_default_language,
            allowed_networks=tuple(settings.webhook_allowed_networks),
            ca_bundle=settings.webhook_ca_bundle,
        )


def _without_query(uri: str) -> str:
    """A URL fit for logs: a signed URL's query (a SAS token) is a credential."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class PlaySourcePreparer:
    """One per process; thread-safe, and safe beside other processes sharing the cache."""

    def __init__(
        self,
        settings: PreparerSettings,
        *,
        resolver: Resolver = system_resolver,
        speaker: Speaker | None = None,
    ) -> None:
        self.settings = settings
        self.cache = PlayCache(settings.cache_dir, settings.cache_max_bytes)
        self.fetcher = FileFetcher(
            Policy(parse_networks(settings.allowed_networks)),
            settings.fetch,
            ca_bundle=settings.ca_bundle,
            resolver=resolver,
        )
        self.speaker = speaker or Speaker(settings.speech_timeout_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> PlaySourcePreparer:
        return cls(PreparerSettings.from_settings(settings))

    def prepare(self, source: PlaySource, *, scope: str = "") -> Path:
        """The WAV file (8 kHz, mono, 16-bit PCM) that plays ``source``, or PlaySourceFailed.

        ``scope`` (the resource the request came from) keeps one tenant's
        ``playSourceCacheId`` from naming another tenant's audio. Blocking: a miss may take up
        to the fetch or speech timeout, so an event loop calls it in a thread.
        """
        kind = source.kind.value
        started = time.perf_counter()
        try:
            if source.kind is PlaySourceKind.FILE:
                path, cached = self._prepare_file(source, scope)
            else:
                path, cached = self._prepare_speech(source)
        except PlaySourceFailed as failure:
            PREPARES.labels(kind, f"{failure.code}/{failure.subcode}").inc()
            log.warning(
                "play source failed",
                kind=kind,
                code=failure.code,
                subcode=failure.subcode,
                reason=failure.message,
                uri=_without_query(source.file.uri) if source.file else None,
            )
            raise
        except Exception as exc:  # a bug or the disk: still a PlayFailed, never a silent call
            PREPARES.labels(kind, f"{UNKNOWN_ERROR.code}/{UNKNOWN_ERROR.subcode}").inc()
            log.exception("play source preparation crashed", kind=kind)
            raise PlaySourceFailed.of(UNKNOWN_ERROR, "") from exc
        if cached:
            PREPARES.labels(kind, "cache_hit").inc()
            CACHE_HITS.labels(kind).inc()
        else:
            elapsed = time.perf_counter() - started
            PREPARES.labels(kind, "converted").inc()
            PREPARE_SECONDS.labels(kind).observe(elapsed)
            log.info("play source prepared", kind=kind, file=path.name, seconds=round(elapsed, 3))
        return path

    # Files ----------------------------------------------------------------------------------

    def _prepare_file(self, source: PlaySource, scope: str) -> tuple[Path, bool]:
        assert source.file is not None
        uri = source.file.uri

        def make(path: Path) -> None:
            try:
                data = self.fetcher.fetch(uri)
            except FetchFailed as exc:
                raise PlaySourceFailed.of(FILE_DOWNLOAD_FAILED, str(exc)) from None
            self._convert(data, path, FILE_FORMAT_INVALID)

        return self.cache.get_or_make(file_cache_key(source, scope), make)

    def _convert(self, data: bytes, path: Path, failure: ResultCode) -> None:
        try:
            pcm, converted = to_telephony_pcm(data, self.settings.max_seconds)
        except UnsupportedAudio as exc:
            raise PlaySourceFailed.of(failure, str(exc)) from None
        write_wav(pcm, path)
        log.debug("audio converted", input=converted.input_format, seconds=round(converted.seconds, 2))

    # Speech ---------------------------------------------------------------------------------

    def _voice(self, locale: str | None, voice_name: str | None, kind: VoiceKind | None) -> str:
        try:
            languages = self.speaker.languages()
        except SpeechFailed as exc:
            raise PlaySourceFailed.of(UNKNOWN_ERROR, str(exc)) from None
        language = espeak_language(locale, voice_name, languages)
        if language is None:
            asked = voice_name or locale
            raise PlaySourceFailed.of(SPEECH_REQUEST_INVALID, f"espeak-ng has no voice for {asked!r}.")
        return espeak_voice(language or self.settings.default_language, kind)

    def _prepare_speech(self, source: PlaySource) -> tuple[Path, bool]:
        if source.text is not None:
            text = source.text.text
            voice = self._voice(source.text.source_locale, source.text.voice_name, source.text.voice_kind)
        else:
            assert source.ssml is not None
            text = source.ssml.ssml_text
            voice = self._voice(source.ssml.locale, source.ssml.voice_name, None)
        ssml = source.kind is PlaySourceKind.SSML

        def make(path: Path) -> None:
            try:
                spoken = self.speaker.speak(text, voice, ssml=ssml)
            except SpeechFailed as exc:
                result = SPEECH_TIMED_OUT if exc.timed_out else SPEECH_REQUEST_INVALID
                if exc.empty:
                    result = SPEECH_EMPTY
                raise PlaySourceFailed.of(result, str(exc)) from None
            self._convert(spoken, path, UNKNOWN_ERROR)  # espeak's own WAV: unreadable is our fault

        return self.cache.get_or_make(speech_cache_key(source.kind, text, voice), make)
