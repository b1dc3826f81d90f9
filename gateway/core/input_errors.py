"""Pydantic validation errors as sentences about the user's input (no pydantic dump, no regex,
no errors.pydantic.dev links), shared by the API's 400s, the CLIs and the config-file loaders.

Pure: it takes pydantic's error dictionaries (``ValidationError.errors()``, or a FastAPI
``RequestValidationError``'s), so it imports neither FastAPI nor a domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

ErrorDetails = Mapping[str, Any]

_LENGTH_ERRORS = frozenset({"too_short", "too_long", "string_too_short", "string_too_long"})
_NUMBER_BOUNDS = {
    "greater_than": "greater than",
    "greater_than_equal": "greater than or equal to",
    "less_than": "less than",
    "less_than_equal": "less than or equal to",
    "multiple_of": "a multiple of",
}
_BOUND_CTX = {
    "greater_than": "gt",
    "greater_than_equal": "ge",
    "less_than": "lt",
    "less_than_equal": "le",
    "multiple_of": "multiple_of",
}


def field_of(error: ErrorDetails) -> str:
    """The name of the field an error is about (the last named part of its location)."""
    named = [str(part) for part in error.get("loc", ()) if not isinstance(part, int)]
    return named[-1] if named else ""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _length_sentence(subject: str, error: ErrorDetails) -> str:
    ctx = error.get("ctx", {})
    short = str(error["type"]).endswith("too_short")
    bound = ctx.get("min_length") if short else ctx.get("max_length")
    if short and bound == 1:
        return f"{subject} must not be empty."
    given = error.get("input")
    unit = "characters" if isinstance(given, str) else "entries"
    sentence = f"{subject} must have {'at least' if short else 'at most'} {bound} {unit}"
    if isinstance(given, str | list | tuple | dict):
        return f"{sentence}; it has {len(given)}."
    return sentence + "."


def sentence(error: ErrorDetails, subject: str) -> str:  # noqa: PLR0911 - one rule per kind
    """One pydantic error as a sentence whose grammatical subject is ``subject`` ("The port")."""
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "is invalid"))
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        return _full_stop(message.removeprefix("Value error, "))
    if kind == "assertion_error":
        return _full_stop(message.removeprefix("Assertion failed, "))
    if kind == "missing":
        return f"{subject} is required."
    if kind == "extra_forbidden":
        return f"'{field_of(error)}' is not a setting of this object."
    if kind == "json_invalid":
        return "The request body is not valid JSON."
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", "")).strip()
        return f"{subject} must be one of {expected}, not {_shown(error.get('input'))}."
    if kind in _LENGTH_ERRORS:
        return _length_sentence(subject, error)
    if kind == "string_pattern_mismatch":
        return f"{subject} {_shown(error.get('input'))} is not in the form this field takes."
    if kind in _NUMBER_BOUNDS:
        bound = ctx.get(_BOUND_CTX[kind])
        return f"{subject} must be {_NUMBER_BOUNDS[kind]} {bound} (got {_shown(error.get('input'))})."
    # Anything else ("Input should be a valid integer, unable to parse string as an integer"):
    # pydantic's own words, as a sentence about the subject, without the parser's detail.
    message = message.removeprefix("Input ").replace("should be ", "must be ", 1).split(", ", 1)[0]
    got = f" (got {_shown(error['input'])})" if "input" in error else ""
    return f"{subject} {message}{got}."


def _full_stop(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def default_subject(field: str, labels: Mapping[str, str] | None = None) -> str:
    """ "The port" for ``port``, "The bind mode" for ``bind_mode``; ``labels`` names fields
    otherwise (``{"allow": "allow-list"}``)."""
    label = (labels or {}).get(field) or field.replace("_", " ")
    return f"The {label}" if label else "The input"


def describe_errors(errors: Iterable[ErrorDetails], labels: Mapping[str, str] | None = None) -> str:
    """Every error as a sentence, once each, joined: what is wrong with the input."""
    sentences = [sentence(error, default_subject(field_of(error), labels)) for error in errors]
    return " ".join(dict.fromkeys(sentences)) or "The input is invalid."


def describe(exc: ValidationError, labels: Mapping[str, str] | None = None) -> str:
    """What is wrong with a model's input, in sentences (for CLIs, config files and specs)."""
    return describe_errors(exc.errors(), labels)


def location(loc: Sequence[Any]) -> str:
    """``("body", "smsRecipients", 0, "to")`` -> ``smsRecipients[0].to`` (where in a request)."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or str(loc[0] if loc else "request")


def request_sentence(error: ErrorDetails) -> str:
    """One error of a request body as a sentence naming the field where it is ("The value of
    'smsRecipients' must have at most 100 entries; it has 101.")."""
    where = location(error.get("loc", ()))
    return sentence(error, f"The value of '{where}'")
