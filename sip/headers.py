"""Pure reading of SIP message headers: the header list of a raw message and name-addr values.

The worker gets the whole INVITE as text from pjsua2 and hands the platform what it needs
(From display name, P-Asserted-Identity, Diversion, the edge's source header...) without pjsua2
types. Folded lines are joined, compact names expanded, and the body is never read.
"""

from __future__ import annotations

import re
from typing import NamedTuple

COMPACT_NAMES = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "y": "Identity",
}

# Headers of transport and routing: the platform never needs them from an INVITE.
TRANSPORT_HEADERS = frozenset(
    {"via", "route", "record-route", "max-forwards", "content-length", "content-type", "contact", "cseq"}
)


class NameAddr(NamedTuple):
    """A From/To/P-Asserted-Identity value: display name and URI, parameters dropped."""

    display_name: str
    uri: str


def parse_headers(message: str) -> list[tuple[str, str]]:
    """The (name, value) header lines of a raw SIP message, in order, start line excluded."""
    head = re.split(r"\r?\n\r?\n", message, maxsplit=1)[0]
    lines = re.split(r"\r?\n", head)[1:]
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and headers:  # folded continuation
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not name:
            continue
        headers.append((COMPACT_NAMES.get(name.lower(), name) if len(name) == 1 else name, value.strip()))
    return headers


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def application_headers(headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The headers worth passing to the platform: all but transport and routing ones."""
    return tuple((k, v) for k, v in headers if k.lower() not in TRANSPORT_HEADERS)


def parse_name_addr(value: str) -> NameAddr:
    """``"Alice" <sip:a@h>;tag=x`` -> NameAddr("Alice", "sip:a@h"); a bare URI keeps its text."""
    value = value.strip()
    start = value.find("<")
    end = value.find(">", start + 1)
    if start != -1 and end != -1:
        display = value[:start].strip()
        if len(display) >= 2 and display[0] == display[-1] == '"':
            display = re.sub(r"\\(.)", r"\1", display[1:-1])
        return NameAddr(display, value[start + 1 : end].strip())
    return NameAddr("", value.split(";", 1)[0].strip())


def request_uri(message: str) -> str:
    """The Request-URI of a request's start line ('' for a response)."""
    parts = message.split("\n", 1)[0].split(" ")
    return parts[1].strip() if len(parts) == 3 and not parts[0].startswith("SIP/") else ""
