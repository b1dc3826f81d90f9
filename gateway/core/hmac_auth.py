"""ACS HMAC-SHA256 request signing, sans-IO.

A signed request carries ``x-ms-date`` (or ``Date``), ``x-ms-content-sha256`` (base64 SHA-256 of
the body) and ``Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=S``
where ``S`` is base64(HMAC-SHA256(base64decode(key), "VERB\\n<path?query>\\n<v1>;<v2>;<v3>")), the
``v`` being the values of the signed headers in the order listed. Nothing here touches the network
or the clock: callers pass the request's parts and ``now``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import unquote

SCHEME = "HMAC-SHA256"
DATE_HEADERS = ("x-ms-date", "date")
CONTENT_HASH_HEADER = "x-ms-content-sha256"
DEFAULT_SIGNED_HEADERS = ("x-ms-date", "host", CONTENT_HASH_HEADER)
# Headers a signature is read from. A request carrying one of them twice is refused: which copy
# counts would be a guess, and a proxy in front may guess otherwise (junk first, the valid one
# last, was accepted).
SINGLE_VALUED_HEADERS = frozenset({b"authorization", b"x-ms-date", CONTENT_HASH_HEADER.encode(), b"host"})


class HmacAuthError(ValueError):
    """Why a request's signature was not accepted; the message is safe to show the client."""


@dataclass(frozen=True)
class AuthorizationHeader:
    signed_headers: tuple[str, ...]
    signature: bytes


def content_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def http_date(moment: datetime) -> str:
    """RFC 7231 IMF-fixdate, as the SDKs send in x-ms-date."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def string_to_sign(method: str, path_and_query: str, header_values: Sequence[str]) -> str:
    return f"{method.upper()}\n{path_and_query}\n{';'.join(header_values)}"


def signature(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def decode_key(key_b64: str) -> bytes:
    try:
        return base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("access key is not valid base64") from exc


def sign_request(
    method: str,
    path_and_query: str,
    host: str,
    body: bytes,
    key_b64: str,
    now: datetime,
) -> dict[str, str]:
    """The headers an ACS SDK adds to a request (used by our own clients and tests)."""
    date = http_date(now)
    digest = content_hash(body)
    sig = signature(decode_key(key_b64), string_to_sign(method, path_and_query, (date, host, digest)))
    return {
        "x-ms-date": date,
        CONTENT_HASH_HEADER: digest,
        "Authorization": f"{SCHEME} SignedHeaders={';'.join(DEFAULT_SIGNED_HEADERS)}"
        f"&Signature={base64.b64encode(sig).decode('ascii')}",
    }


def repeated_header(headers: Iterable[tuple[bytes, bytes]], names: frozenset[bytes]) -> str | None:
    """The first of ``names`` (lowercase) that ``headers`` (an ASGI header list, names
    lowercase) carries more than once, else None."""
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in names:
            if name in seen:
                return name.decode("latin-1")
            seen.add(name)
    return None


def parse_authorization(value: str | None) -> AuthorizationHeader:
    if not value:
        raise HmacAuthError("The Authorization header is missing.")
    scheme, _, params = value.strip().partition(" ")
    if scheme.upper() != SCHEME:
        raise HmacAuthError(f"The Authorization scheme must be {SCHEME}.")
    fields: dict[str, str] = {}
    for part in params.strip().split("&"):
        name, sep, val = part.partition("=")
        if not sep:
            raise HmacAuthError("The Authorization header is malformed.")
        # The signature is base64 and may itself end in '='; only the first '=' separates.
        fields[name.strip().lower()] = val.strip()
    signed = fields.get("signedheaders")
    sig_b64 = fields.get("signature")
    if not signed or not sig_b64:
        raise HmacAuthError("The Authorization header must carry SignedHeaders and Signature.")
    names = tuple(h.strip().lower() for h in signed.split(";"))
    if any(not n for n in names):
        raise HmacAuthError("SignedHeaders lists an empty header name.")
    if "host" not in names or CONTENT_HASH_HEADER not in names or not any(d in names for d in DATE_HEADERS):
        raise HmacAuthError(
            f"SignedHeaders must include host, {CONTENT_HASH_HEADER} and x-ms-date (or date)."
        )
    try:
        sig = base64.b64decode(sig_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HmacAuthError("The Signature is not valid base64.") from exc
    return AuthorizationHeader(names, sig)


def parse_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise HmacAuthError("The request date is not an RFC 1123 date.") from exc
    if parsed.tzinfo is None:
        raise HmacAuthError("The request date must be in GMT.")
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class SignedRequest:
    """What the server checks: the request as received, before any key is tried."""

    method: str
    path_and_query_candidates: tuple[str, ...]
    header_values: tuple[str, ...]
    signature: bytes

    def matches(self, key: bytes) -> bool:
        """Constant-time check of the signature under ``key``, for each accepted path form."""
        ok = False
        for path in self.path_and_query_candidates:
            expected = signature(key, string_to_sign(self.method, path, self.header_values))
            # Evaluate every candidate so timing does not reveal which form matched.
            ok = hmac.compare_digest(expected, self.signature) | ok
        return ok


def path_and_query_forms(raw_path: str, query_string: str) -> tuple[str, ...]:
    """The exact path and query as sent, and its percent-decoded form.

    The async SDK clients sign the decoded URL (``decode_url=True`` in their HMAC policy), the
    sync ones the URL as sent; both reach the server as the same bytes.
    """
    sent = raw_path + (f"?{query_string}" if query_string else "")
    decoded = unquote(sent)
    return (sent,) if decoded == sent else (sent, decoded)


def prepare(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    max_skew: timedelta,
) -> SignedRequest:
    """Check everything that does not need a key; raise HmacAuthError with the reason.

    ``headers`` may be any mapping; names are matched case-insensitively.
    """
    headers = {name.lower(): value for name, value in headers.items()}
    auth = parse_authorization(headers.get("authorization"))
    date_header = next((d for d in auth.signed_headers if d in DATE_HEADERS), None)
    assert date_header is not None  # parse_authorization guarantees one
    date_value = headers.get(date_header)
    if not date_value:
        raise HmacAuthError(f"The {date_header} header is missing.")
    sent_at = parse_date(date_value)
    if abs(now - sent_at) > max_skew:
        minutes = int(max_skew.total_seconds() // 60)
        raise HmacAuthError(f"The request date is more than {minutes} minutes away from the server time.")
    claimed_hash = headers.get(CONTENT_HASH_HEADER)
    if not claimed_hash:
        raise HmacAuthError(f"The {CONTENT_HASH_HEADER} header is missing.")
    if not hmac.compare_digest(claimed_hash.encode(), content_hash(body).encode()):
        raise HmacAuthError(f"The {CONTENT_HASH_HEADER} header does not match the request body.")
    values: list[str] = []
    for name in auth.signed_headers:
        value = headers.get(name)
        if value is None:
            raise HmacAuthError(f"The signed header {name} is missing.")
        values.append(value)
    return SignedRequest(
        method=method.upper(),
        path_and_query_candidates=path_and_query_forms(raw_path, query_string),
        header_values=tuple(values),
        signature=auth.signature,
    )
