"""The pure parts of the INVITE decision: numbers in URIs, source addresses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.calls.inbound import Verdict, number_of, source_host


@given(
    st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True), st.sampled_from(["sip", "sips", "tel"]), st.booleans()
)
def test_number_of_reads_the_user_part(digits: str, scheme: str, plus: bool) -> None:
    user = ("+" if plus else "") + digits
    uri = f"{scheme}:{user}" + ("" if scheme == "tel" else "@carrier.example:5060;user=phone")
    assert number_of(uri) == "+" + digits
    assert number_of(f"<{uri}>") == "+" + digits


@pytest.mark.parametrize("uri", ["sip:alice@example.com", "http:+15550001", "", "sip:@host", "sip:+1@host"])
def test_number_of_refuses_what_is_not_a_phone_number(uri: str) -> None:
    assert number_of(uri) is None


def test_source_host_and_verdicts() -> None:
    assert source_host("192.0.2.1:5060") == "192.0.2.1"
    assert source_host("[2001:db8::1]:5060") == "2001:db8::1"
    assert [v.sip_status for v in Verdict] == [180, 403, 404, 480]
