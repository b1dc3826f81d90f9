"""The sans-IO ACS HMAC module: signing, parsing and verification."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac as std_hmac
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from unittest import mock
from urllib.parse import quote, unquote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.core import hmac_auth
from gateway.core.hmac_auth import HmacAuthError

MAX_SKEW = timedelta(minutes=15)
NOW = datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC)
KEY = base64.b64encode(b"k" * 32).decode()

# Printable URL characters; '?' and '#' are left out of paths, '#' out of queries.
PATH_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:@!$&'()*+,;=%"
paths = st.lists(st.text(PATH_CHARS, max_size=12), min_size=1, max_size=5).map(lambda p: "/" + "/".join(p))
queries = st.text(PATH_CHARS + "/?", max_size=40)
methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
hosts = st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,30}(:[0-9]{1,5})?\Z")
bodies = st.binary(max_size=256)
keys = st.binary(min_size=1, max_size=64).map(lambda b: base64.b64encode(b).decode())
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


def _join(path: str, query: str) -> str:
    return path + (f"?{query}" if query else "")


def _received(signed: dict[str, str], host: str) -> dict[str, str]:
    """Headers as the server sees them: lower-case names (Starlette's Headers are case-insensitive)."""
    headers = {name.lower(): value for name, value in signed.items()}
    headers["host"] = host
    return headers


def _prepare(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    now: datetime = NOW,
) -> hmac_auth.SignedRequest:
    return hmac_auth.prepare(method, path, query, headers, body, now, MAX_SKEW)


def _verifies(
    signed: dict[str, str], method: str, path: str, query: str, host: str, body: bytes, key: str
) -> bool:
    request = _prepare(method, path, query, _received(signed, host), body)
    return request.matches(base64.b64decode(key))


# Round trip -----------------------------------------------------------------------------------


@given(method=methods, path=paths, query=queries, host=hosts, body=bodies, key=keys, now=moments)
def test_signed_request_verifies(
    method: str, path: str, query: str, host: str, body: bytes, key: str, now: datetime
) -> None:
    signed = hmac_auth.sign_request(method, _join(path, query), host, body, key, now)
    request = hmac_auth.prepare(method, path, query, _received(signed, host), body, now, MAX_SKEW)
    assert request.matches(base64.b64decode(key))


@given(method=methods, path=paths, query=queries, host=hosts, body=bodies, key=keys, other=keys)
def test_other_key_does_not_verify(
    method: str, path: str, query: str, host: str, body: bytes, key: str, other: str
) -> None:
    assume(base64.b64decode(key) != base64.b64decode(other))
    signed = hmac_auth.sign_request(method, _join(path, query), host, body, key, NOW)
    assert not _verifies(signed, method, path, query, host, body, other)


@given(method=methods, other_method=methods, path=paths, query=queries, body=bodies)
def test_changed_method_breaks_signature(
    method: str, other_method: str, path: str, query: str, body: bytes
) -> None:
    assume(method != other_method)
    signed = hmac_auth.sign_request(method, _join(path, query), "h", body, KEY, NOW)
    assert not _verifies(signed, other_method, path, query, "h", body, KEY)


@given(path=paths, other_path=paths, query=queries)
def test_changed_path_breaks_signature(path: str, other_path: str, query: str) -> None:
    assume(other_path not in hmac_auth.path_and_query_forms(path, "") and unquote(other_path) != path)
    signed = hmac_auth.sign_request("POST", _join(path, query), "h", b"", KEY, NOW)
    assert not _verifies(signed, "POST", other_path, query, "h", b"", KEY)


@given(path=paths, query=queries, other_query=queries)
def test_changed_query_breaks_signature(path: str, query: str, other_query: str) -> None:
    signed_forms = {_join(path, query), unquote(_join(path, query))}
    assume(not signed_forms & set(hmac_auth.path_and_query_forms(path, other_query)))
    signed = hmac_auth.sign_request("POST", _join(path, query), "h", b"", KEY, NOW)
    assert not _verifies(signed, "POST", path, other_query, "h", b"", KEY)


@given(body=bodies, other_body=bodies)
def test_changed_body_is_refused(body: bytes, other_body: bytes) -> None:
    assume(body != other_body)
    signed = hmac_auth.sign_request("POST", "/p", "h", body, KEY, NOW)
    # As sent: the content hash no longer matches the body.
    with pytest.raises(HmacAuthError, match="does not match the request body"):
        _prepare("POST", "/p", "", _received(signed, "h"), other_body)
    # With the content hash recomputed for the new body, the signature no longer matches.
    forged = dict(signed, **{"x-ms-content-sha256": hmac_auth.content_hash(other_body)})
    assert not _verifies(forged, "POST", "/p", "", "h", other_body, KEY)


@given(host=hosts, other_host=hosts)
def test_changed_host_breaks_signature(host: str, other_host: str) -> None:
    assume(host != other_host)
    signed = hmac_auth.sign_request("GET", "/p", host, b"", KEY, NOW)
    assert not _verifies(signed, "GET", "/p", "", other_host, b"", KEY)


@given(shift=st.integers(min_value=-900, max_value=900).filter(bool))
def test_changed_date_breaks_signature(shift: int) -> None:
    signed = hmac_auth.sign_request("GET", "/p", "h", b"", KEY, NOW)
    signed["x-ms-date"] = hmac_auth.http_date(NOW + timedelta(seconds=shift))
    assert not _verifies(signed, "GET", "/p", "", "h", b"", KEY)


@given(segments=st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=4), query=queries)
def test_percent_decoded_form_verifies(segments: list[str], query: str) -> None:
    """Async SDK clients sign the decoded URL; the server receives the encoded one."""
    sent_path = "/" + "/".join(quote(s, safe="") for s in segments)
    decoded = unquote(_join(sent_path, query))
    signed = hmac_auth.sign_request("POST", decoded, "h", b"{}", KEY, NOW)
    assert _verifies(signed, "POST", sent_path, query, "h", b"{}", KEY)


def test_identity_path_signed_encoded_or_decoded() -> None:
    sent = "/identities/8%3Aacs%3Aabc_def/:issueAccessToken"
    for signed_form in (sent, "/identities/8:acs:abc_def/:issueAccessToken"):
        signed = hmac_auth.sign_request("POST", f"{signed_form}?api-version=2023-10-01", "h", b"", KEY, NOW)
        assert _verifies(signed, "POST", sent, "api-version=2023-10-01", "h", b"", KEY)


def test_path_forms() -> None:
    assert hmac_auth.path_and_query_forms("/a", "") == ("/a",)
    assert hmac_auth.path_and_query_forms("/a", "x=1") == ("/a?x=1",)
    assert hmac_auth.path_and_query_forms("/a%3Ab", "x=%2F") == ("/a%3Ab?x=%2F", "/a:b?x=/")


# Against the SDK's own policy -----------------------------------------------------------------


# urlparse, which the SDK uses, cuts ";params" off the last path segment; ACS paths have none.
sdk_paths = st.lists(st.text(PATH_CHARS.replace(";", ""), max_size=12), min_size=1, max_size=5).map(
    lambda p: "/" + "/".join(p)
)


@given(path=sdk_paths, query=queries, body=st.text(max_size=100), decode_url=st.booleans())
def test_matches_the_acs_sdk_policy(path: str, query: str, body: str, decode_url: bool) -> None:
    from azure.communication.identity._shared import policy as sdk_policy

    url = "https://acs.example.com" + _join(path, query)
    request = SimpleNamespace(
        http_request=SimpleNamespace(method="post", url=url, body=body or None, headers={}),
        context=SimpleNamespace(transport=None),
    )
    with mock.patch.object(sdk_policy, "get_current_utc_time", return_value=hmac_auth.http_date(NOW)):
        sdk_policy.HMACCredentialsPolicy("https://acs.example.com", KEY, decode_url=decode_url).on_request(
            request
        )
    signed_path = unquote(_join(path, query)) if decode_url else _join(path, query)
    ours = hmac_auth.sign_request("POST", signed_path, "acs.example.com", body.encode(), KEY, NOW)
    sdk_headers = request.http_request.headers
    assert {name: sdk_headers[name] for name in ours} == ours


def test_sign_request_by_hand() -> None:
    body = b'{"createTokenWithScopes":["chat"]}'
    headers = hmac_auth.sign_request("post", "/identities?api-version=2023-10-01", "h:443", body, KEY, NOW)
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    message = f"POST\n/identities?api-version=2023-10-01\nFri, 14 Mar 2025 15:09:26 GMT;h:443;{digest}"
    expected = base64.b64encode(std_hmac.new(b"k" * 32, message.encode(), hashlib.sha256).digest()).decode()
    assert headers == {
        "x-ms-date": "Fri, 14 Mar 2025 15:09:26 GMT",
        "x-ms-content-sha256": digest,
        "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={expected}",
    }


def test_invalid_key_is_refused_when_signing() -> None:
    with pytest.raises(ValueError, match="base64"):
        hmac_auth.sign_request("GET", "/", "h", b"", "not base64!", NOW)


# parse_authorization --------------------------------------------------------------------------

SIG = base64.b64encode(b"\x01" * 32).decode()  # 32 bytes: base64 ends in '='


def test_signature_containing_equals_signs() -> None:
    assert SIG.endswith("=")
    parsed = hmac_auth.parse_authorization(
        f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={SIG}"
    )
    assert parsed.signature == b"\x01" * 32
    assert parsed.signed_headers == ("x-ms-date", "host", "x-ms-content-sha256")


def test_parameter_names_and_scheme_are_case_insensitive() -> None:
    parsed = hmac_auth.parse_authorization(
        f"hmac-sha256 signedheaders=X-MS-Date;Host;X-MS-Content-SHA256&signature={SIG}"
    )
    assert parsed.signed_headers == ("x-ms-date", "host", "x-ms-content-sha256")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        (f"Bearer {SIG}", "scheme"),
        (f"HMAC-SHA1 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={SIG}", "scheme"),
        ("HMAC-SHA256", "malformed"),
        (f"HMAC-SHA256 Signature={SIG}", "must carry"),
        ("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256", "must carry"),
        ("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=", "must carry"),
        (f"HMAC-SHA256 SignedHeaders=&Signature={SIG}", "must carry"),
        (f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={SIG}&junk", "malformed"),
        (f"HMAC-SHA256 SignedHeaders=x-ms-date;;host;x-ms-content-sha256&Signature={SIG}", "empty"),
        (f"HMAC-SHA256 SignedHeaders=x-ms-date;host&Signature={SIG}", "must include"),
        (f"HMAC-SHA256 SignedHeaders=host;x-ms-content-sha256&Signature={SIG}", "must include"),
        (f"HMAC-SHA256 SignedHeaders=x-ms-date;x-ms-content-sha256&Signature={SIG}", "must include"),
        ("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=***", "base64"),
        ("HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=abc", "base64"),
    ],
)
def test_parse_authorization_refuses(value: str | None, reason: str) -> None:
    with pytest.raises(HmacAuthError, match=reason):
        hmac_auth.parse_authorization(value)


@given(st.text(max_size=80))
def test_parse_authorization_never_raises_anything_else(value: str) -> None:
    with contextlib.suppress(HmacAuthError):
        hmac_auth.parse_authorization(value)


# prepare: dates and required headers ------------------------------------------------------------


@pytest.mark.parametrize("offset", [-900, -899, 0, 899, 900])
def test_skew_up_to_fifteen_minutes_is_accepted(offset: int) -> None:
    signed = hmac_auth.sign_request("GET", "/p", "h", b"", KEY, NOW)
    request = _prepare("GET", "/p", "", _received(signed, "h"), b"", now=NOW + timedelta(seconds=offset))
    assert request.matches(base64.b64decode(KEY))


@pytest.mark.parametrize("offset", [-901, -900.5, 900.5, 901, 86400])
def test_skew_beyond_fifteen_minutes_is_refused(offset: float) -> None:
    signed = hmac_auth.sign_request("GET", "/p", "h", b"", KEY, NOW)
    with pytest.raises(HmacAuthError, match="15 minutes"):
        _prepare("GET", "/p", "", _received(signed, "h"), b"", now=NOW + timedelta(seconds=offset))


def _date_signed(now: datetime, body: bytes = b"") -> dict[str, str]:
    """A request signed with the Date header instead of x-ms-date."""
    date = hmac_auth.http_date(now)
    digest = hmac_auth.content_hash(body)
    sig = hmac_auth.signature(
        base64.b64decode(KEY), hmac_auth.string_to_sign("GET", "/p", (date, "h", digest))
    )
    return {
        "date": date,
        "host": "h",
        "x-ms-content-sha256": digest,
        "authorization": "HMAC-SHA256 SignedHeaders=date;host;x-ms-content-sha256"
        f"&Signature={base64.b64encode(sig).decode()}",
    }


def test_date_header_instead_of_x_ms_date() -> None:
    headers = _date_signed(NOW)
    assert _prepare("GET", "/p", "", headers, b"").matches(base64.b64decode(KEY))
    with pytest.raises(HmacAuthError, match="15 minutes"):
        _prepare("GET", "/p", "", headers, b"", now=NOW + timedelta(minutes=16))
    with pytest.raises(HmacAuthError, match="date header is missing"):
        _prepare("GET", "/p", "", {k: v for k, v in headers.items() if k != "date"}, b"")


def test_x_ms_date_signed_but_only_date_sent_is_refused() -> None:
    signed = _received(hmac_auth.sign_request("GET", "/p", "h", b"", KEY, NOW), "h")
    signed["date"] = signed.pop("x-ms-date")
    with pytest.raises(HmacAuthError, match="x-ms-date header is missing"):
        _prepare("GET", "/p", "", signed, b"")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("x-ms-content-sha256", "x-ms-content-sha256 header is missing"),
        ("host", "signed header host is missing"),
        ("authorization", "Authorization header is missing"),
    ],
)
def test_missing_header_is_refused(header: str, reason: str) -> None:
    headers = _received(hmac_auth.sign_request("GET", "/p", "h", b"", KEY, NOW), "h")
    del headers[header]
    with pytest.raises(HmacAuthError, match=reason):
        _prepare("GET", "/p", "", headers, b"")


@pytest.mark.parametrize(
    "value", ["yesterday", "", "Fri, 14 Mar 2025 15:09:26", "Fri, 14 Mar 2025 15:09:26 -0000"]
)
def test_unusable_date_is_refused(value: str) -> None:
    headers = _received(hmac_auth.sign_request("GET", "/p", "h", b"", KEY, NOW), "h")
    headers["x-ms-date"] = value
    with pytest.raises(HmacAuthError):
        _prepare("GET", "/p", "", headers, b"")


def test_date_with_offset_is_compared_in_utc() -> None:
    parsed = hmac_auth.parse_date("Fri, 14 Mar 2025 16:09:26 +0100")
    assert parsed == NOW


def test_http_date_round_trips() -> None:
    assert hmac_auth.parse_date(hmac_auth.http_date(NOW)) == NOW
    plus_five = NOW.astimezone(timezone(timedelta(hours=5)))
    assert hmac_auth.http_date(plus_five) == "Fri, 14 Mar 2025 15:09:26 GMT"


@given(method=methods, path=paths, query=queries, host=hosts, body=bodies, key=keys)
def test_header_names_match_in_any_case(
    method: str, path: str, query: str, host: str, body: bytes, key: str
) -> None:
    signed = hmac_auth.sign_request(method, _join(path, query), host, body, key, NOW)
    as_sent = {name.upper(): value for name, value in signed.items()} | {"Host": host}
    request = _prepare(method, path, query, as_sent, body)
    assert request.matches(base64.b64decode(key))


def test_repeated_header_finds_the_first_name_given_twice() -> None:
    names = hmac_auth.SINGLE_VALUED_HEADERS
    assert hmac_auth.repeated_header([(b"host", b"a"), (b"accept", b"x"), (b"accept", b"y")], names) is None
    twice = [(b"x-ms-date", b"a"), (b"host", b"h"), (b"x-ms-date", b"b")]
    assert hmac_auth.repeated_header(twice, names) == "x-ms-date"
    assert hmac_auth.repeated_header([], names) is None
