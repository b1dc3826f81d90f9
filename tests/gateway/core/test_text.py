"""The text rule (gateway/core/text.py), without HTTP."""

from __future__ import annotations

from urllib.parse import quote_from_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.core.text import (
    TEXT_CHECKED,
    BadText,
    InputModel,
    TextProblem,
    decoded_url_text_problem,
    json_text_problem,
    may_hide_bad_text,
    text_problem,
    url_text_problem,
)

FORBIDDEN_IN_BODIES = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + ["\x7f"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\x00b", TextProblem.NUL),
        ("\ud800", TextProblem.SURROGATE),
        ("x\udfff", TextProblem.SURROGATE),
        ("bell\x07", TextProblem.CONTROL),
        ("del\x7f", TextProblem.CONTROL),
        ("tab\tnew\nline\r", None),
        ("ünïcødé 😀 \u0085", None),
        ("", None),
    ],
)
def test_text_problem(value: str, problem: TextProblem | None) -> None:
    assert text_problem(value) is problem


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="".join(FORBIDDEN_IN_BODIES))))
def test_text_without_forbidden_characters_passes(value: str) -> None:
    assert text_problem(value) is None


@given(st.text(), st.sampled_from([*FORBIDDEN_IN_BODIES, "\ud8ff"]), st.text())
def test_any_forbidden_character_is_found(before: str, bad: str, after: str) -> None:
    assert text_problem(before + bad + after) is not None


def test_json_text_problem_names_the_place() -> None:
    assert json_text_problem({"a": [{"b": "ok"}, {"c": "x\x00"}]}) == BadText("a[1].c", TextProblem.NUL)
    assert json_text_problem({"k\x01": 1}) == BadText("k\x01", TextProblem.CONTROL)
    assert json_text_problem(["\ud800"]) == BadText("[0]", TextProblem.SURROGATE)
    assert json_text_problem("\x00") == BadText("$", TextProblem.NUL)
    assert json_text_problem({"a": 1, "b": None, "c": [True, 2.5, "fine\n"]}) is None


def test_only_escapes_and_encoded_surrogates_can_hide_bad_text() -> None:
    assert may_hide_bad_text(b'{"a": "\\u0000"}')
    assert may_hide_bad_text(b'{"a": "\xed\xa0\x80"}')
    assert not may_hide_bad_text(b'{"a": "plain \\n text"}')


@given(st.text(alphabet=st.characters(codec="utf-8", min_codepoint=0x20, exclude_characters="\x7f")))
def test_a_url_of_any_printable_text_passes(value: str) -> None:
    encoded = quote_from_bytes(value.encode(), safe="")
    assert url_text_problem(f"/x/{encoded}".encode(), f"q={encoded}&{encoded}=1".encode()) is None


@pytest.mark.parametrize(
    ("raw_path", "query", "found"),
    [
        (b"/deliveryReports/%00", b"", BadText("path", TextProblem.NUL)),
        (b"/a%0Ab", b"", BadText("path", TextProblem.CONTROL)),
        (b"/a%FF", b"", BadText("path", TextProblem.NOT_UTF8)),
        (b"/a%ED%A0%80", b"", BadText("path", TextProblem.NOT_UTF8)),  # an encoded surrogate
        (b"/a\x00", b"", BadText("path", TextProblem.NUL)),
        (b"/a", b"locality=%00&api-version=1", BadText("locality", TextProblem.NUL)),
        (b"/a", b"country=%C3%28", BadText("country", TextProblem.NOT_UTF8)),
        (b"/a", b"x%00=1", BadText("query", TextProblem.NUL)),
        (b"/a", b"tab=%09", BadText("tab", TextProblem.CONTROL)),
        (b"/a%20b", b"q=a+b&r=%E2%82%AC&flag", None),
    ],
)
def test_url_text_problem(raw_path: bytes, query: bytes, found: BadText | None) -> None:
    assert url_text_problem(raw_path, query) == found


url_bytes = st.binary(max_size=40) | st.lists(
    st.sampled_from(
        [
            b"a",
            b"%",
            b"%00",
            b"%0A",
            b"%FF",
            b"%ED%A0%80",
            b"%E2%82%AC",
            b"+",
            b"&",
            b"=",
            b"\x00",
            b"\x7f",
            b"\xc3\xa9",
        ]
    ),
    max_size=12,
).map(b"".join)


@given(url_bytes, url_bytes)
def test_url_text_problem_shortcut_agrees_with_decoding(raw_path: bytes, query: bytes) -> None:
    assert url_text_problem(raw_path, query) == decoded_url_text_problem(raw_path, query)


class Inner(InputModel):
    name: str


class Outer(InputModel):
    inner: Inner
    extra: dict[str, object] = {}


def test_input_model_applies_the_rule_to_every_string() -> None:
    with pytest.raises(ValidationError, match=r"inner\.name' contains a NUL"):
        Outer.model_validate({"inner": {"name": "a\x00"}})
    with pytest.raises(ValidationError, match=r"extra\.deep\[0\]' contains an unpaired surrogate"):
        Outer.model_validate({"inner": {"name": "a"}, "extra": {"deep": ["\udc00"]}})
    assert Outer.model_validate({"inner": {"name": "line\n"}}).inner.name == "line\n"


def test_input_model_trusts_data_json_body_checked() -> None:
    checked = Outer.model_validate({"inner": {"name": "a\x00"}}, context={TEXT_CHECKED: True})
    assert checked.inner.name == "a\x00"
