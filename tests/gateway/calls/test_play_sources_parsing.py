"""playSources read into values (pure): every malformed source is a 400 naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.calls.play_source_rules import (
    MAX_PLAY_SOURCES,
    MAX_SSML_CHARS,
    MAX_TEXT_CHARS,
    FileSource,
    PlaySource,
    PlaySourceKind,
    SsmlSource,
    TextSource,
    VoiceKind,
    espeak_language,
    espeak_voice,
    file_cache_key,
    read_ssml,
    speech_cache_key,
)
from gateway.calls.play_sources import parse_play_sources, play_source_body
from gateway.core.errors import BadRequest, InvalidField

SSML = (
    '<speak version="1.0" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">'
    '<voice name="en-US-JennyNeural">Hello <prosody rate="slow">there</prosody></voice></speak>'
)


def one(source: dict[str, Any]) -> PlaySource:
    [parsed] = parse_play_sources([source])
    return parsed


def refused(body: Any) -> InvalidField:
    with pytest.raises(InvalidField) as caught:
        parse_play_sources(body)
    error = caught.value
    assert isinstance(error, BadRequest)  # answered as a 400
    assert error.status_code == 400
    assert error.body()["error"]["code"] == "InvalidRequest"
    return error


def test_the_three_kinds_as_the_sdk_sends_them() -> None:
    sources = parse_play_sources(
        [
            {"kind": "file", "file": {"uri": "https://cdn.example.com/a.wav"}, "playSourceCacheId": "menu"},
            {
                "kind": "text",
                "text": {"text": "Hello", "sourceLocale": "fr-FR", "voiceKind": "female", "voiceName": "x"},
            },
            {"kind": "ssml", "ssml": {"ssmlText": SSML}},
        ]
    )
    assert sources[0] == PlaySource(
        PlaySourceKind.FILE, file=FileSource("https://cdn.example.com/a.wav"), play_source_cache_id="menu"
    )
    assert sources[1].text == TextSource("Hello", "fr-FR", VoiceKind.FEMALE, "x")
    assert sources[2].ssml == SsmlSource(SSML, locale="en-US", voice_name="en-US-JennyNeural")


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (None, "playSources", "non-empty array"),
        ([], "playSources", "non-empty array"),
        ([{"kind": "file", "file": {"uri": "https://a.example/x.wav"}}] * 11, "playSources", "at most 10"),
        (["file"], "playSources[0]", "must be an object"),
        ([{"file": {"uri": "https://a.example"}}], "playSources[0].kind", "required"),
        ([{"kind": "video", "video": {}}], "playSources[0].kind", "not a play source kind"),
        ([{"kind": "file"}], "playSources[0].file", "required for this kind"),
        ([{"kind": "file", "file": {}}], "playSources[0].file.uri", "required"),
        ([{"kind": "file", "file": {"uri": "  "}}], "playSources[0].file.uri", "required"),
        ([{"kind": "file", "file": {"uri": "ftp://a.example/x.wav"}}], "playSources[0].file.uri", "https://"),
        ([{"kind": "file", "file": {"uri": "file:///etc/passwd"}}], "playSources[0].file.uri", "https://"),
        (
            [{"kind": "file", "file": {"uri": "https://u:p@a.example/x"}}],
            "playSources[0].file.uri",
            "credentials",
        ),
        ([{"kind": "file", "file": {"uri": "https:///x.wav"}}], "playSources[0].file.uri", "no host"),
        (
            [{"kind": "file", "file": {"uri": "https://a.example:99999/"}}],
            "playSources[0].file.uri",
            "not a valid",
        ),
        (
            [{"kind": "file", "file": {"uri": "https://a.example/" + "x" * 2048}}],
            "playSources[0].file.uri",
            "longer than",
        ),
        ([{"kind": "text", "text": {"text": ""}}], "playSources[0].text.text", "must not be empty"),
        ([{"kind": "text", "text": {"text": " \n"}}], "playSources[0].text.text", "must not be empty"),
        ([{"kind": "text", "text": {"text": 5}}], "playSources[0].text.text", "required"),
        (
            [{"kind": "text", "text": {"text": "x" * (MAX_TEXT_CHARS + 1)}}],
            "playSources[0].text.text",
            "longer than",
        ),
        (
            [{"kind": "text", "text": {"text": "hi", "voiceKind": "robot"}}],
            "playSources[0].text.voiceKind",
            "male or female",
        ),
        (
            [{"kind": "text", "text": {"text": "hi", "sourceLocale": "english please"}}],
            "playSources[0].text.sourceLocale",
            "not a locale",
        ),
        (
            [{"kind": "ssml", "ssml": {"ssmlText": "<speak>hi"}}],
            "playSources[0].ssml.ssmlText",
            "well-formed",
        ),
        ([{"kind": "ssml", "ssml": {"ssmlText": "<p>hi</p>"}}], "playSources[0].ssml.ssmlText", "<speak>"),
        (
            [{"kind": "ssml", "ssml": {"ssmlText": "<speak> </speak>"}}],
            "playSources[0].ssml.ssmlText",
            "no text",
        ),
        (
            [{"kind": "ssml", "ssml": {"ssmlText": '<!DOCTYPE s [<!ENTITY a "b">]><speak>&a;</speak>'}}],
            "playSources[0].ssml.ssmlText",
            "DOCTYPE",
        ),
        (
            [{"kind": "ssml", "ssml": {"ssmlText": "<speak>" + "a" * MAX_SSML_CHARS + "</speak>"}}],
            "playSources[0].ssml.ssmlText",
            "longer than",
        ),
        (
            [{"kind": "text", "text": {"text": "hi"}, "playSourceCacheId": 7}],
            "playSources[0].playSourceCacheId",
            "string",
        ),
        (
            [
                {"kind": "file", "file": {"uri": "https://a.example/x.wav"}},
                {"kind": "text", "text": {"text": ""}},
            ],
            "playSources[1].text.text",
            "must not be empty",
        ),
    ],
)
def test_a_malformed_source_is_a_400_naming_its_field(body: Any, field: str, says: str) -> None:
    error = refused(body)
    assert error.target == field
    assert says in error.message


def test_errors_name_the_array_they_were_given_as() -> None:
    with pytest.raises(InvalidField) as caught:
        parse_play_sources([{"kind": "text", "text": {"text": ""}}], field="playPrompts")
    assert caught.value.target == "playPrompts[0].text.text"


def test_kind_and_voice_kind_are_read_whatever_their_case() -> None:
    source = one({"kind": "Text", "text": {"text": "hi", "voiceKind": "Male"}})
    assert source.kind is PlaySourceKind.TEXT
    assert source.text is not None
    assert source.text.voice_kind is VoiceKind.MALE


def test_ssml_locale_comes_from_the_voice_before_the_document() -> None:
    assert read_ssml('<speak xml:lang="de-DE">Hallo</speak>') == ("de-DE", None)
    locale, name = read_ssml(
        '<speak xml:lang="de-DE"><voice name="fr-FR-DeniseNeural" xml:lang="fr-FR">Salut</voice></speak>'
    )
    assert (locale, name) == ("fr-FR", "fr-FR-DeniseNeural")


# Properties -------------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=60).filter(lambda t: t.strip() != "")
_locale = st.sampled_from(["en-US", "fr-FR", "de", "pt-BR", "es-419"])
_word = st.text(alphabet="abcdefghij", min_size=1, max_size=12)
_file_sources = st.builds(
    lambda host, path, cache_id: PlaySource(
        PlaySourceKind.FILE,
        file=FileSource(f"https://{host}.example/{path}.wav"),
        play_source_cache_id=cache_id,
    ),
    _word,
    _word,
    st.none() | _word,
)
_text_sources = st.builds(
    lambda text, locale, kind, name: PlaySource(
        PlaySourceKind.TEXT, text=TextSource(text, locale, kind, name)
    ),
    _text,
    st.none() | _locale,
    st.none() | st.sampled_from(VoiceKind),
    st.none() | _word,
)
_ssml_sources = st.builds(
    lambda locale, words: PlaySource(
        PlaySourceKind.SSML,
        ssml=SsmlSource(f'<speak xml:lang="{locale}">{" ".join(words)}</speak>', locale=locale),
    ),
    _locale,
    st.lists(_word, min_size=1, max_size=5),
)
_sources = st.lists(_file_sources | _text_sources | _ssml_sources, min_size=1, max_size=MAX_PLAY_SOURCES)


@given(_sources)
def test_what_is_written_reads_back_the_same(sources: list[PlaySource]) -> None:
    assert parse_play_sources([play_source_body(s) for s in sources]) == sources


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_near_sources = st.lists(
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["file", "text", "ssml", "FILE", "other"]) | _json},
        optional={
            "file": st.fixed_dictionaries({}, optional={"uri": _json | st.just("https://a.example/x")}),
            "text": st.fixed_dictionaries({}, optional={"text": _json, "voiceKind": _json}),
            "ssml": st.fixed_dictionaries({}, optional={"ssmlText": _json | st.just("<speak>hi</speak>")}),
            "playSourceCacheId": _json,
        },
    ),
    max_size=12,
)


@settings(max_examples=300)
@given(_json | _near_sources)
def test_any_body_is_sources_or_a_400(body: Any) -> None:
    error: InvalidField | None = None
    try:
        sources = parse_play_sources(body)
    except InvalidField as caught:
        error = caught
    if error is not None:
        assert error.status_code == 400
        assert error.target is not None
        assert error.target.startswith("playSources")
        return
    assert 1 <= len(sources) <= MAX_PLAY_SOURCES
    for source in sources:
        details = [source.file, source.text, source.ssml]
        assert sum(d is not None for d in details) == 1
        assert getattr(source, source.kind.value) is not None


_languages = st.frozensets(st.sampled_from(["en", "en-us", "en-gb", "fr-fr", "de", "es", "pt-br", "cmn"]))


@given(
    st.none() | _locale | st.just("xx-YY"),
    st.none() | st.sampled_from(["de-DE-KatjaNeural", "Jenny"]),
    _languages,
)
def test_the_espeak_language_is_one_espeak_has(
    locale: str | None, voice_name: str | None, available: frozenset[str]
) -> None:
    language = espeak_language(locale, voice_name, available)
    assert language is None or language == "" or language in available
    if locale is None and (voice_name is None or voice_name == "Jenny"):
        assert language == ""  # nothing asked: the default voice


def test_espeak_language_choices() -> None:
    available = {"en", "en-us", "en-gb", "fr-fr", "fr-be", "de", "pt-br", "pt"}
    assert espeak_language("en-US", None, available) == "en-us"
    assert espeak_language("en-GB", "de-DE-KatjaNeural", available) == "de"  # the voice wins
    assert espeak_language("fr-CA", None, available) == "fr-fr"
    assert espeak_language("de-AT", None, available) == "de"
    assert espeak_language("xx-YY", None, available) is None
    assert espeak_voice("en-us", VoiceKind.FEMALE) == "en-us+f3"
    assert espeak_voice("en-us", None) == "en-us"


def test_cache_keys_separate_what_sounds_different() -> None:
    a = one({"kind": "file", "file": {"uri": "https://a.example/1.wav"}})
    b = one({"kind": "file", "file": {"uri": "https://a.example/2.wav"}})
    a_id = one({"kind": "file", "file": {"uri": "https://a.example/1.wav"}, "playSourceCacheId": "menu"})
    b_id = one({"kind": "file", "file": {"uri": "https://a.example/2.wav"}, "playSourceCacheId": "menu"})
    assert file_cache_key(a) != file_cache_key(b)
    assert file_cache_key(a_id) == file_cache_key(b_id)  # the app says they are the same media
    assert file_cache_key(a_id, "resource-1") != file_cache_key(a_id, "resource-2")
    assert speech_cache_key(PlaySourceKind.TEXT, "hi", "en-us") != speech_cache_key(
        PlaySourceKind.TEXT, "hi", "en-us+f3"
    )
    assert speech_cache_key(PlaySourceKind.TEXT, "hi", "en-us") != speech_cache_key(
        PlaySourceKind.SSML, "hi", "en-us"
    )
