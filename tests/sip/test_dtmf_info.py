"""Reading DTMF from SIP INFO requests: dtmf-relay's Signal/Duration and dtmf's bare digit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.dtmf_info import BARE, RELAY, InfoDigit, info_digit

TONES = "0123456789*#ABCD"


def info(content_type: str, body: str) -> str:
    return (
        "INFO sip:trunkline@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1\r\n"
        "CSeq: 3 INFO\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )


@given(digit=st.sampled_from(TONES), duration=st.integers(0, 60000), crlf=st.booleans())
def test_relay_bodies_give_their_signal_and_duration(digit: str, duration: int, crlf: bool) -> None:
    end = "\r\n" if crlf else "\n"
    body = f"Signal={digit}{end}Duration={duration}{end}"
    assert info_digit(info(RELAY, body)) == InfoDigit(digit, duration, RELAY)


@given(digit=st.sampled_from(TONES))
def test_bare_dtmf_bodies_are_the_digit(digit: str) -> None:
    assert info_digit(info(BARE, f"{digit.lower()}\r\n")) == InfoDigit(digit, 0, BARE)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("Application/DTMF-Relay; charset=x", "signal = 5\r\nduration = 100", InfoDigit("5", 100, RELAY)),
        (RELAY, "Signal=10\r\nDuration=160", InfoDigit("*", 160, RELAY)),  # event code 10
        (RELAY, "Signal=11", InfoDigit("#", 0, RELAY)),
        (RELAY, "Signal=x\r\nDuration=160", None),
        (RELAY, "Duration=160", None),
        (BARE, "55", None),
        (BARE, "", None),
        ("application/media_control+xml", "<x/>", None),
        ("text/plain", "5", None),
    ],
)
def test_other_bodies(content_type: str, body: str, expected: InfoDigit | None) -> None:
    assert info_digit(info(content_type, body)) == expected


@given(raw=st.text(max_size=300))
def test_any_text_is_read_without_error(raw: str) -> None:
    found = info_digit(raw)
    assert found is None or found.digit in TONES
