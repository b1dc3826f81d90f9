"""The one rule for the text a client sends, applied before anything stores or looks it up.

PostgreSQL refuses NUL (U+0000) in text, and neither database driver can encode an unpaired
surrogate; both reached the database as 500s. So, everywhere a client's text enters:

- URL path and query (``gateway.core.middleware.UrlTextMiddleware``): percent-decoded, they must
  be UTF-8 without control characters (C0 and DEL) at all;
- JSON bodies (``gateway.core.bodies.json_body`` and ``InputModel``, the base of every request
  model): no string, key or value, may hold NUL, an unpaired surrogate, or a C0 control other than
  tab, line feed and carriage return (which free text such as an SMS may carry) or DEL.

Lengths are the schemas' business (``max_length`` of the column a value is stored in).
Pure: no FastAPI; ``InputModel`` is plain pydantic.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, NamedTuple
from urllib.parse import unquote_to_bytes

from pydantic import BaseModel, ValidationInfo, model_validator


class TextProblem(StrEnum):
    """What is wrong with a piece of text (the words finish "the value ...")."""

    NUL = "contains a NUL character (U+0000)"
    SURROGATE = "contains an unpaired surrogate"
    CONTROL = "contains a control character"
    NOT_UTF8 = "is not valid UTF-8"


# In a body string: C0 controls but tab, LF, CR; DEL; surrogates (which only escapes can make).
_BODY_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# In a URL (after percent-decoding): every C0 control and DEL.
_URL_FORBIDDEN = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# A raw URL part without these bytes (printable ASCII, no percent-escape) decodes to itself and
# cannot break the rule: the usual request is passed by one search of each part.
_URL_NOT_PLAIN = re.compile(rb"[^\x20-\x24\x26-\x7e]")


def _problem_of(match: re.Match[str] | None) -> TextProblem | None:
    if match is None:
        return None
    found = match.group()
    if found == "\x00":
        return TextProblem.NUL
    if "\ud800" <= found <= "\udfff":
        return TextProblem.SURROGATE
    return TextProblem.CONTROL


def text_problem(value: str) -> TextProblem | None:
    """What makes ``value`` unacceptable as a string of a JSON body, if anything."""
    return _problem_of(_BODY_FORBIDDEN.search(value))


class BadText(NamedTuple):
    """Where a request's text breaks the rule (a JSON location, ``path``, or a query parameter's
    name) and how."""

    where: str
    problem: TextProblem

    def message(self) -> str:
        return f"The value of '{self.where}' {self.problem}."


def json_text_problem(data: Any, where: str = "") -> BadText | None:
    """The first string of a parsed JSON document (keys too) that breaks the rule, with its
    location (``smsRecipients[0].to``; ``$`` for the document itself)."""
    if isinstance(data, str):
        problem = text_problem(data)
        return BadText(where or "$", problem) if problem else None
    if isinstance(data, dict):
        for key, value in data.items():
            inner = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and (problem := text_problem(key)):
                return BadText(inner, problem)
            if found := json_text_problem(value, inner):
                return found
    elif isinstance(data, list):
        for index, item in enumerate(data):
            if found := json_text_problem(item, f"{where}[{index}]"):
                return found
    return None


def may_hide_bad_text(raw: bytes) -> bool:
    """Whether a JSON document could hold text the rule refuses: strict JSON refuses raw control
    characters in strings, so only ``\\u`` escapes and UTF-8-encoded surrogates (lead byte 0xED,
    which ``json.loads`` of bytes lets through) can bring them. Cheap: spares the hot path a walk."""
    return b"\\u" in raw or b"\xed" in raw


def _url_problem(raw: bytes, *, plus_is_space: bool) -> tuple[str, TextProblem | None]:
    """A part of a URL percent-decoded, and what breaks the rule in it."""
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), TextProblem.NOT_UTF8
    return text, _problem_of(_URL_FORBIDDEN.search(text))


def url_text_problem(raw_path: bytes, query_string: bytes) -> BadText | None:
    """The first part of a request URL that breaks the rule: its path (``path``), or a query
    parameter (named by its name, ``query`` when the name itself breaks it)."""
    if _URL_NOT_PLAIN.search(raw_path) is None and _URL_NOT_PLAIN.search(query_string) is None:
        return None
    return decoded_url_text_problem(raw_path, query_string)


def decoded_url_text_problem(raw_path: bytes, query_string: bytes) -> BadText | None:
    """``url_text_problem`` the long way, decoding each part (what its shortcut must agree with)."""
    _, problem = _url_problem(raw_path, plus_is_space=False)
    if problem:
        return BadText("path", problem)
    for pair in query_string.split(b"&") if query_string else ():
        raw_name, _, raw_value = pair.partition(b"=")
        name, problem = _url_problem(raw_name, plus_is_space=True)
        if problem:
            return BadText("query", problem)
        _, problem = _url_problem(raw_value, plus_is_space=True)
        if problem:
            return BadText(name, problem)
    return None


# The validation context key saying the data came from json_body, which has checked its text.
TEXT_CHECKED = "text_checked"


class InputModel(BaseModel):
    """The base of every model of data a client sends: the text rule over the whole input
    (every string, however deep, in fields of any type), before any field is validated."""

    @model_validator(mode="before")
    @classmethod
    def _text_rule(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(info.context, dict) and info.context.get(TEXT_CHECKED):
            return data
        if isinstance(data, dict | list | str) and (found := json_text_problem(data)):
            raise ValueError(found.message())
        return data
