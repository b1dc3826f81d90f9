"""Reading SIP headers and name-addr values out of a raw INVITE."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sip.headers import (
    NameAddr,
    application_headers,
    header,
    parse_headers,
    parse_name_addr,
    request_uri,
)

INVITE = (
    "INVITE sip:+15550001@10.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK1\r\n"
    'f: "Alice \\"A\\"" <sip:+15551230000@carrier.example>;tag=1\r\n'
    "t: <sip:+15550001@10.0.0.1>\r\n"
    "i: abc@carrier\r\n"
    "P-Asserted-Identity: <sip:+15551230000@carrier.example>,\r\n"
    " <tel:+15551230000>\r\n"
    "Content-Length: 3\r\n"
    "\r\n"
    "v=0\r\nX-Body: no\r\n"
)


def test_headers_are_read_with_compact_names_and_folding() -> None:
    headers = parse_headers(INVITE)
    assert header(headers, "call-id") == "abc@carrier"
    assert header(headers, "p-asserted-identity") == "<sip:+15551230000@carrier.example>, <tel:+15551230000>"
    assert header(headers, "X-Body") is None  # the body is never read
    assert [name for name, _ in application_headers(headers)] == [
        "From",
        "To",
        "Call-ID",
        "P-Asserted-Identity",
    ]
    assert request_uri(INVITE) == "sip:+15550001@10.0.0.1:5060"
    assert request_uri("SIP/2.0 200 OK\r\n\r\n") == ""


def test_name_addr_forms() -> None:
    assert parse_name_addr(header(parse_headers(INVITE), "From") or "") == NameAddr(
        'Alice "A"', "sip:+15551230000@carrier.example"
    )
    assert parse_name_addr("Bob <sip:b@h>;tag=2") == NameAddr("Bob", "sip:b@h")
    assert parse_name_addr("sip:c@h;tag=3") == NameAddr("", "sip:c@h")
    assert parse_name_addr("") == NameAddr("", "")


names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{1,15}", fullmatch=True)
values = st.from_regex(r"[!-~]([ -~]{0,30}[!-~])?", fullmatch=True)


@given(st.lists(st.tuples(names, values), max_size=8))
def test_written_headers_are_read_back(pairs: list[tuple[str, str]]) -> None:
    message = "OPTIONS sip:x SIP/2.0\r\n" + "".join(f"{n}: {v}\r\n" for n, v in pairs) + "\r\nbody: x\r\n"
    assert parse_headers(message) == pairs


@given(st.text(alphabet=st.characters(blacklist_characters='"\\<>\r\n'), max_size=20), values)
def test_quoted_display_names_are_unquoted(display: str, user: str) -> None:
    uri = "sip:" + user.replace(">", "").replace("<", "").replace(";", "") + "@h"
    assert parse_name_addr(f'"{display}" <{uri}>;tag=1') == NameAddr(display, uri.strip())


@given(st.text(max_size=200))
def test_any_text_parses_without_error(text: str) -> None:
    parse_headers(text)
    parse_name_addr(text)
    request_uri(text)
