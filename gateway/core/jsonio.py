"""JSON on the hot request path (``POST /sms``) through orjson, with the standard library's
answer wherever orjson would differ.

orjson parses and renders a ``POST /sms`` body and answer in about a sixth of the standard
library's time (bench/api_layers.py; docs/performance.md). It refuses a few things ``json``
takes: NaN and Infinity, bodies not in UTF-8 (``json.loads`` also reads UTF-16 and UTF-32),
and objects it cannot render. Each refusal falls back to ``json``, so what a client sees is what
``json`` alone gave: the same values, the same errors. One difference is silent: orjson reads
an integer beyond 64 bits as a float, so a body with a run of 19 digits or more goes to ``json``.

Rendering differs in two ways: orjson writes a float's exponent without padding (``2.5e-8``
where ``json`` writes ``2.5e-08``: the same number), and NaN and infinities as ``null``, where
``JSONResponse`` refuses them; an answer with a ``null`` is therefore rendered by ``json``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from starlette.responses import JSONResponse

# Where an integer may not fit in 64 bits (or a string holds many digits: json reads it the same).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def loads(raw: bytes) -> Any:
    """``json.loads(raw)``, faster for the bodies orjson reads alike."""
    if _LONG_DIGITS.search(raw):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)  # the standard library's value, or its ValueError


class FastJSONResponse(JSONResponse):
    """Starlette's ``JSONResponse`` (compact, UTF-8, no NaN), rendered by orjson.

    FastAPI's ``ORJSONResponse`` is deprecated (FastAPI renders declared response models through
    pydantic); this serves the plain ASGI routes that build their responses themselves."""

    def render(self, content: Any) -> bytes:
        try:
            rendered = orjson.dumps(content)
        except orjson.JSONEncodeError:
            return super().render(content)  # what json gives, or its error
        if b"null" in rendered:  # maybe a NaN or an infinity, which json refuses
            return super().render(content)
        return rendered
