"""Play sources, pure: the ``playSources`` of a play or recognize request read into values, the
result codes a failed preparation reports, the espeak-ng voice a source asks for, and the cache
key of what a source sounds like.

The wire shape is CallAutomation 2026-03-12's ``PlaySource`` (``kind`` file/text/ssml, one of
``file`` {uri}, ``text`` {text, sourceLocale, voiceKind, voiceName, customVoiceEndpointId},
``ssml`` {ssmlText, customVoiceEndpointId}, and ``playSourceCacheId``). The spec gives no
numeric limits; the ones below are Trunkline's (docs/calls.md, "Play sources"). Fetching,
speaking and converting are :mod:`gateway.calls.play_sources`' job; nothing here does IO.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gateway.core.errors import InvalidField
from gateway.events.ssrf import DestinationRefused, split_url

# Limits (Trunkline's: the spec has none). Ten prompts in one request is more than an IVR
# menu plays; the text bounds keep one espeak-ng run within its timeout.
MAX_PLAY_SOURCES = 10
MAX_URI_CHARS = 2048
MAX_TEXT_CHARS = 4000
MAX_SSML_CHARS = 10000
MAX_CACHE_ID_CHARS = 256
MAX_VOICE_NAME_CHARS = 200

# Bumped when the conversion changes, so entries made by an older one are not used again.
CONVERSION_VERSION = 1

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
# A neural voice name starts with its locale: en-US-JennyNeural, zh-CN-XiaoxiaoNeural.
_VOICE_NAME_LOCALE = re.compile(r"^([A-Za-z]{2,3}-[A-Za-z]{2,4})-")
_SSML_NAMESPACE = "{http://www.w3.org/2001/10/synthesis}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class PlaySourceKind(StrEnum):
    FILE = "file"
    TEXT = "text"
    SSML = "ssml"


class VoiceKind(StrEnum):
    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class FileSource:
    uri: str


@dataclass(frozen=True, slots=True)
class TextSource:
    text: str
    source_locale: str | None = None
    voice_kind: VoiceKind | None = None
    voice_name: str | None = None
    custom_voice_endpoint_id: str | None = None  # accepted, not used: no custom voices here


@dataclass(frozen=True, slots=True)
class SsmlSource:
    ssml_text: str
    custom_voice_endpoint_id: str | None = None
    # What the document asks for, read when it was validated: the locale of <speak xml:lang>
    # or of its first <voice>, and that voice's name.
    locale: str | None = None
    voice_name: str | None = None


@dataclass(frozen=True, slots=True)
class PlaySource:
    """One prompt: exactly the detail of its ``kind`` is set."""

    kind: PlaySourceKind
    file: FileSource | None = None
    text: TextSource | None = None
    ssml: SsmlSource | None = None
    play_source_cache_id: str | None = None


# Result codes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultCode:
    code: int
    subcode: int
    message: str


# ACS's resultInformation of PlayFailed (and RecognizeFailed for a prompt): the subcodes are the
# SDKs' MediaEventReasonCode values (PlayDownloadFailed 8536, PlayInvalidFileFormat 8535,
# CognitiveServicesError 8565, PlaySourceTextOrSsmlEmpty 8582, UnspecifiedError 9999); 8565 is
# what ACS reports when its speech service refuses or times out, which espeak-ng stands in for.
FILE_FORMAT_INVALID = ResultCode(400, 8535, "Action failed, file format is invalid.")
FILE_DOWNLOAD_FAILED = ResultCode(400, 8536, "Action failed, file could not be downloaded.")
SPEECH_REQUEST_INVALID = ResultCode(400, 8565, "Action failed, bad request to the speech engine.")
SPEECH_TIMED_OUT = ResultCode(408, 8565, "Action failed, the speech engine timed out.")
SPEECH_EMPTY = ResultCode(400, 8582, "Action failed, play source text or ssml empty.")
UNKNOWN_ERROR = ResultCode(500, 9999, "Unknown internal server error.")


class PlaySourceFailed(Exception):
    """A source that could not be made playable: ``code``/``subcode`` are ACS's PlayFailed
    ``resultInformation``; ``message`` says what went wrong (safe to show to the app)."""

    def __init__(self, code: int, subcode: int, message: str) -> None:
        super().__init__(f"{code}/{subcode}: {message}")
        self.code = code
        self.subcode = subcode
        self.message = message

    @classmethod
    def of(cls, result: ResultCode, detail: str) -> PlaySourceFailed:
        detail = detail[:1].upper() + detail[1:]
        return cls(result.code, result.subcode, f"{result.message} {detail}".strip())


# Parsing ----------------------------------------------------------------------------------------


def _field(item: str, *names: str) -> str:
    """A field's name in the body: ``_field("playSources[1]", "file", "uri")``."""
    return item + "".join(f".{name}" for name in names)


def _optional_string(value: Any, field: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(f"{field} must be a string", field)
    if len(value) > limit:
        raise InvalidField(f"{field} is longer than {limit} characters", field)
    return value or None


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidField(f"{field} is required for this kind and must be an object", field)
    return value


def _parse_file(detail: dict[str, Any], item: str) -> FileSource:
    field = _field(item, "file", "uri")
    uri = detail.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidField(f"{field} is required: the URL of a WAV or MP3 file", field)
    uri = uri.strip()
    if len(uri) > MAX_URI_CHARS:
        raise InvalidField(f"{field} is longer than {MAX_URI_CHARS} characters", field)
    try:
        split_url(uri)
    except DestinationRefused as exc:
        message = exc.reason.replace("the destination", "the file URL", 1)
        raise InvalidField(f"{field}: {message} (https://, or http:// inside the allow-list)", field) from exc
    return FileSource(uri=uri)


def _parse_locale(value: Any, field: str) -> str | None:
    locale = _optional_string(value, field, 35)
    if locale is not None and not _LOCALE.match(locale):
        raise InvalidField(f"{field} is not a locale such as en-US: {locale!r}", field)
    return locale


def _parse_text(detail: dict[str, Any], item: str) -> TextSource:
    field = _field(item, "text", "text")
    text = detail.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidField(f"{field} is required and must not be empty", field)
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidField(f"{field} is longer than {MAX_TEXT_CHARS} characters", field)
    kind_field = _field(item, "text", "voiceKind")
    kind = _optional_string(detail.get("voiceKind"), kind_field, 16)
    voice_kind: VoiceKind | None = None
    if kind is not None:
        try:
            voice_kind = VoiceKind(kind.lower())
        except ValueError:
            raise InvalidField(f"{kind_field} must be male or female, not {kind!r}", kind_field) from None
    return TextSource(
        text=text,
        source_locale=_parse_locale(detail.get("sourceLocale"), _field(item, "text", "sourceLocale")),
        voice_kind=voice_kind,
        voice_name=_optional_string(
            detail.get("voiceName"), _field(item, "text", "voiceName"), MAX_VOICE_NAME_CHARS
        ),
        custom_voice_endpoint_id=_optional_string(
            detail.get("customVoiceEndpointId"), _field(item, "text", "customVoiceEndpointId"), 200
        ),
    )


def _local_name(tag: str) -> str:
    return tag.removeprefix(_SSML_NAMESPACE) if tag.startswith("{") else tag


def read_ssml(ssml_text: str, field: str = "ssmlText") -> tuple[str | None, str | None]:
    """(locale, voice name) of a valid SSML document, or InvalidField.

    Valid: well-formed XML whose root is ``<speak>``, with something to say, and without a DTD
    or entity declarations (refused before parsing, so no entity expansion can blow up).
    """
    lowered = ssml_text.lower()
    if "<!doctype" in lowered or "<!entity" in lowered:
        raise InvalidField(f"{field}: SSML must not declare a DOCTYPE or entities", field)
    try:
        root = ET.fromstring(ssml_text)  # noqa: S314 - no DTD can reach here (checked above)
    except ET.ParseError as exc:
        raise InvalidField(f"{field} is not well-formed SSML: {exc}", field) from None
    if _local_name(root.tag) != "speak":
        raise InvalidField(f"{field}: the root element of SSML must be <speak>", field)
    if not "".join(root.itertext()).strip():
        raise InvalidField(f"{field}: the SSML has no text to speak", field)
    locale = root.get(_XML_LANG)
    voice_name: str | None = None
    for element in root.iter():
        if _local_name(element.tag) == "voice":
            voice_name = element.get("name") or None
            locale = element.get(_XML_LANG) or locale
            break
    if locale is not None and not _LOCALE.match(locale):
        raise InvalidField(f"{field}: xml:lang is not a locale such as en-US: {locale!r}", field)
    return locale, voice_name


def _parse_ssml(detail: dict[str, Any], item: str) -> SsmlSource:
    field = _field(item, "ssml", "ssmlText")
    ssml_text = detail.get("ssmlText")
    if not isinstance(ssml_text, str) or not ssml_text.strip():
        raise InvalidField(f"{field} is required and must not be empty", field)
    if len(ssml_text) > MAX_SSML_CHARS:
        raise InvalidField(f"{field} is longer than {MAX_SSML_CHARS} characters", field)
    locale, voice_name = read_ssml(ssml_text, field)
    return SsmlSource(
        ssml_text=ssml_text,
        custom_voice_endpoint_id=_optional_string(
            detail.get("customVoiceEndpointId"), _field(item, "ssml", "customVoiceEndpointId"), 200
        ),
        locale=locale,
        voice_name=voice_name,
    )


def _parse_one(value: Any, item: str) -> PlaySource:
    if not isinstance(value, dict):
        raise InvalidField(f"{item} must be an object", item)
    kind_field = _field(item, "kind")
    raw_kind = value.get("kind")
    if not isinstance(raw_kind, str):
        raise InvalidField(f"{kind_field} is required: file, text or ssml", kind_field)
    try:
        kind = PlaySourceKind(raw_kind.lower())
    except ValueError:
        raise InvalidField(
            f"{kind_field} {raw_kind!r} is not a play source kind: file, text or ssml", kind_field
        ) from None
    cache_id = _optional_string(
        value.get("playSourceCacheId"), _field(item, "playSourceCacheId"), MAX_CACHE_ID_CHARS
    )
    detail = _object(value.get(kind.value), _field(item, kind.value))
    if kind is PlaySourceKind.FILE:
        return PlaySource(kind, file=_parse_file(detail, item), play_source_cache_id=cache_id)
    if kind is PlaySourceKind.TEXT:
        return PlaySource(kind, text=_parse_text(detail, item), play_source_cache_id=cache_id)
    return PlaySource(kind, ssml=_parse_ssml(detail, item), play_source_cache_id=cache_id)


def parse_play_sources(body_sources: Any, *, field: str = "playSources") -> list[PlaySource]:
    """The ``playSources`` of a request, in order; InvalidField (a 400 in ACS's shape, naming
    the field) for the first malformed one. ``field`` names the array in errors (recognize's
    ``playPrompts``; a single ``playPrompt`` is passed as a list of one)."""
    if not isinstance(body_sources, list) or not body_sources:
        raise InvalidField(f"{field} must be a non-empty array of play sources", field)
    if len(body_sources) > MAX_PLAY_SOURCES:
        raise InvalidField(
            f"{field} has {len(body_sources)} sources; at most {MAX_PLAY_SOURCES} are played in one request",
            field,
        )
    return [_parse_one(value, f"{field}[{index}]") for index, value in enumerate(body_sources)]


def play_source_body(source: PlaySource) -> dict[str, Any]:
    """The wire form of ``source`` (what ``parse_play_sources`` reads back to the same value)."""
    body: dict[str, Any] = {"kind": source.kind.value}
    if source.play_source_cache_id is not None:
        body["playSourceCacheId"] = source.play_source_cache_id
    if source.file is not None:
        body["file"] = {"uri": source.file.uri}
    if source.text is not None:
        text: dict[str, Any] = {"text": source.text.text}
        for key, value in (
            ("sourceLocale", source.text.source_locale),
            ("voiceKind", source.text.voice_kind.value if source.text.voice_kind else None),
            ("voiceName", source.text.voice_name),
            ("customVoiceEndpointId", source.text.custom_voice_endpoint_id),
        ):
            if value is not None:
                text[key] = value
        body["text"] = text
    if source.ssml is not None:
        ssml: dict[str, Any] = {"ssmlText": source.ssml.ssml_text}
        if source.ssml.custom_voice_endpoint_id is not None:
            ssml["customVoiceEndpointId"] = source.ssml.custom_voice_endpoint_id
        body["ssml"] = ssml
    return body


# Voices -----------------------------------------------------------------------------------------


def _locale_candidates(locale: str | None, voice_name: str | None) -> list[str]:
    candidates: list[str] = []
    if voice_name:
        match = _VOICE_NAME_LOCALE.match(voice_name)
        if match:
            candidates.append(match.group(1))
    if locale:
        candidates.append(locale)
    return [c.lower() for c in candidates]


def espeak_language(locale: str | None, voice_name: str | None, available: Iterable[str]) -> str | None:
    """The espeak-ng language (``en-us``, ``fr-fr``, ``de``) for what a source asks, among
    ``available`` (``espeak-ng --voices``' languages): the locale of ``voice_name`` first, then
    ``locale``; the exact locale, else its language (``de-DE`` -> ``de``), else a variant of
    that language (``fr-CA`` -> ``fr-fr``). None when the source names a locale espeak lacks;
    ``""`` when it names none (the caller's default voice)."""
    languages = sorted({a.lower() for a in available})
    candidates = _locale_candidates(locale, voice_name)
    if not candidates:
        return ""
    for candidate in candidates:
        if candidate in languages:
            return candidate
        base = candidate.split("-", 1)[0]
        if base in languages:
            return base
        # en-AU -> en-gb would be a guess too far; the US variant is espeak's usual English.
        preferred = {"en": "en-us", "fr": "fr-fr", "pt": "pt-br", "es": "es"}.get(base)
        if preferred in languages:
            return preferred
        variants = [language for language in languages if language.startswith(base + "-")]
        if variants:
            return variants[0]
    return None


def espeak_voice(language: str, voice_kind: VoiceKind | None) -> str:
    """``-v`` of espeak-ng: the language plus a female or male variant when one is asked."""
    if voice_kind is VoiceKind.FEMALE:
        return f"{language}+f3"
    if voice_kind is VoiceKind.MALE:
        return f"{language}+m3"
    return language


# Cache keys -------------------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    payload = json.dumps([CONVERSION_VERSION, *parts], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def file_cache_key(source: PlaySource, scope: str = "") -> str:
    """The cache entry of a file source: its ``playSourceCacheId`` when it has one (the app says
    the media behind different URLs is the same), else its URL; within ``scope`` (the resource
    the request came from), so one tenant's cache id never plays another's audio."""
    assert source.file is not None
    if source.play_source_cache_id is not None:
        return _digest("file-id", scope, source.play_source_cache_id)
    return _digest("file-uri", scope, source.file.uri)


def speech_cache_key(kind: PlaySourceKind, text: str, voice: str) -> str:
    """The cache entry of spoken text: what is said and the voice saying it. The rate of SSML
    is inside its text (``<prosody rate>``), so it is part of the key too."""
    return _digest(f"speech-{kind.value}", voice, text)
