"""Phone numbers as the SMS API takes them: E.164 written in international form, and the region
a number belongs to (the quotas' per-country scope, a message's ``country_code``)."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from gateway.core.errors import InvalidField


@lru_cache(maxsize=16384)
def e164_and_region(raw: str) -> tuple[str, str] | None:
    """E.164 and region code of a valid number written in international form, else None.

    Parsing is a good part of a send's CPU and depends on the text alone, so it is cached
    (the senders of a busy resource are few)."""
    text = raw.strip()
    if not text.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.region_code_for_number(parsed) or ""


def normalise_number(raw: str) -> str | None:
    """E.164 of a valid number written in international form, else None."""
    parsed = e164_and_region(raw)
    return None if parsed is None else parsed[0]


def region_of(e164: str) -> str:
    """The region code of an E.164 number ("" when it has none)."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


def sender_or_400(raw: str) -> str:
    """The E.164 of a request's ``from``, or the 400 that answers a malformed one."""
    sender = normalise_number(raw)
    if sender is None:
        raise InvalidField(f"Invalid From phone number format: '{raw}'.", "from", "InvalidFromPhoneNumber")
    return sender
