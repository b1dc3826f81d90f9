"""SMPP validity periods (``submit_sm``'s ``validity_period``) in the relative time format.

SMPP v3.4 §7.1.1 writes a time as 16 characters, ``YYMMDDhhmmsstnnp``; with ``p`` = ``R`` the
fields are a period from the SMSC's current time (years, months, days, hours, minutes, seconds;
tenths ``t`` and ``nn`` are ``000``). A period is written in days, hours, minutes and seconds, so
it means the same to every SMSC; two digits of days carry 99 days, 23:59:59 at most (the longest
here: months and years have no fixed length).
"""

from __future__ import annotations

import re

MAX_RELATIVE_SECONDS = 99 * 86_400 + 86_399
_RELATIVE = re.compile(r"^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)000R$")


def relative_validity_period(seconds: int) -> str:
    """``seconds`` (at least 1) as a relative validity period, at most 99 days, 23:59:59."""
    if seconds < 1:
        raise ValueError(f"a validity period is at least one second, not {seconds}")
    seconds = min(seconds, MAX_RELATIVE_SECONDS)
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{seconds:02d}000R"


def relative_period_seconds(value: str) -> int | None:
    """Seconds of a relative period written with no years or months (as this module writes
    them); None for anything else (an absolute time, months, a malformed value)."""
    match = _RELATIVE.match(value)
    if match is None:
        return None
    years, months, days, hours, minutes, seconds = (int(group) for group in match.groups())
    if years or months or hours > 23 or minutes > 59 or seconds > 59:
        return None
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
