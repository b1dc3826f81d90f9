"""Pure reading of DTMF carried in SIP INFO bodies.

Two body types are in use: ``application/dtmf-relay`` (``Signal=5`` and ``Duration=160`` lines;
pjsua parses it itself) and ``application/dtmf`` (the body is the digit alone; pjsua does not).
"""

from __future__ import annotations

from typing import NamedTuple

from sip.headers import header, parse_headers

TONES = frozenset("0123456789*#ABCD")
RELAY = "application/dtmf-relay"
BARE = "application/dtmf"
_EVENT_CODES = "0123456789*#ABCD"  # RFC 4733 event codes 0-15, which some relays send as Signal


class InfoDigit(NamedTuple):
    digit: str
    duration_ms: int
    content_type: str


def info_digit(raw: str) -> InfoDigit | None:
    """The digit of a whole INFO request (headers and body), or None when it carries none."""
    content_type = (header(parse_headers(raw), "Content-Type") or "").split(";")[0].strip().lower()
    if content_type not in (RELAY, BARE):
        return None
    _, _, body = raw.replace("\r\n", "\n").partition("\n\n")
    if content_type == BARE:
        digit = _tone(body.strip())
        return InfoDigit(digit, 0, content_type) if digit else None
    fields: dict[str, str] = {}
    for line in body.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    digit = _tone(fields.get("signal", ""))
    if not digit:
        return None
    duration = fields.get("duration", "")
    return InfoDigit(digit, int(duration) if duration.isdigit() else 0, content_type)


def _tone(text: str) -> str:
    if text.isdigit() and len(text) == 2 and int(text) < len(_EVENT_CODES):
        return _EVENT_CODES[int(text)]  # "10" is *, "11" is #
    text = text.upper()
    return text if len(text) == 1 and text in TONES else ""
