"""gateway.core.jsonio: orjson where it reads and renders as the standard library does, the
standard library's answer everywhere else."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from gateway.core.jsonio import FastJSONResponse, loads

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _same(left: Any, right: Any) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0 are not the same value here)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)
    return bool(left == right)


@given(JSON_VALUES)
def test_reads_what_json_reads(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert _same(loads(raw), json.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 123456789012345678901234567890}',  # orjson would read a float
        b'{"a": -9223372036854775809}',
        b'{"a": 18446744073709551615}',
        b'{"a": NaN, "b": -Infinity}',  # json reads these; orjson refuses them
        '{"a": "é"}'.encode("utf-16"),  # json detects UTF-16 and UTF-32
        b'{"a": "\\ud800"}',  # an unpaired surrogate: the text rule, not the parser, refuses it
        b'{"a": 1, "a": 2}',
        b"\xef\xbb\xbf{}",  # json reads bytes with a UTF-8 byte order mark (not a str with one)
    ],
)
def test_where_orjson_differs_the_answer_is_jsons(raw: bytes) -> None:
    assert _same(loads(raw), json.loads(raw))


@pytest.mark.parametrize("raw", [b"", b"{not json", b'{"a": 1} trailing', b"[" * 5000])
def test_what_json_refuses_is_refused_as_json_does(raw: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)) as expected:
        json.loads(raw)
    with pytest.raises(expected.type):
        loads(raw)


@given(JSON_VALUES)
def test_renders_as_starlettes_json_response(value: Any) -> None:
    fast, plain = FastJSONResponse(value).body, JSONResponse(value).body
    # The same JSON; byte for byte unless a float's exponent is written (2.5e-8 for 2.5e-08).
    assert _same(json.loads(fast), json.loads(plain))
    if not _has_float(value):
        assert fast == plain


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


def test_what_orjson_cannot_render_goes_to_json() -> None:
    big = {"a": 10**30}
    assert FastJSONResponse(big).body == JSONResponse(big).body
    for refused in (float("nan"), float("inf")):  # orjson would write null; JSONResponse refuses
        with pytest.raises(ValueError, match="not JSON compliant"):
            FastJSONResponse({"a": refused})
    assert FastJSONResponse({"a": None}).body == b'{"a":null}'
