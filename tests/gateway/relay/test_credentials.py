"""coturn use-auth-secret credentials (sans-IO)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from gateway.relay.credentials import anonymous_user, is_valid, turn_credential

secrets_ = st.text(min_size=1, max_size=64)
users = st.text(max_size=40)
ttls = st.integers(min_value=1, max_value=172800).map(lambda s: timedelta(seconds=s))
moments = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@given(secret=secrets_, user=users, now=moments, ttl=ttls)
def test_credential_is_valid_until_it_expires(secret: str, user: str, now: datetime, ttl: timedelta) -> None:
    cred = turn_credential(secret, user, now, ttl)
    assert cred.expires_on == now + ttl
    assert is_valid(secret, cred.username, cred.credential, now)
    assert is_valid(secret, cred.username, cred.credential, now + ttl)
    assert not is_valid(secret, cred.username, cred.credential, now + ttl + timedelta(seconds=1))


@given(secret=secrets_, other=secrets_, user=users, now=moments, ttl=ttls)
def test_other_secret_is_refused(secret: str, other: str, user: str, now: datetime, ttl: timedelta) -> None:
    assume(secret != other)
    cred = turn_credential(secret, user, now, ttl)
    assert not is_valid(other, cred.username, cred.credential, now)


@given(secret=secrets_, user=users, now=moments, ttl=ttls)
def test_username_format_is_coturns(secret: str, user: str, now: datetime, ttl: timedelta) -> None:
    cred = turn_credential(secret, user, now, ttl)
    expiry, sep, name = cred.username.partition(":")
    assert sep == ":"
    assert int(expiry) == int((now + ttl).timestamp())
    assert ":" not in name  # coturn splits at the first ':' only; the user part has none
    assert name == user.replace(":", "-")
    # What coturn computes: base64(HMAC-SHA1(static-auth-secret, username)).
    expected = hmac.new(secret.encode(), cred.username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(cred.credential) == expected


@given(secret=secrets_, user=users, now=moments, ttl=ttls, extension=st.integers(1, 10**6))
def test_changed_username_is_refused(
    secret: str, user: str, now: datetime, ttl: timedelta, extension: int
) -> None:
    cred = turn_credential(secret, user, now, ttl)
    expiry, _, name = cred.username.partition(":")
    longer = f"{int(expiry) + extension}:{name}"
    assert not is_valid(secret, longer, cred.credential, now)
    assert not is_valid(secret, cred.username + "x", cred.credential, now)


def test_malformed_usernames_are_refused() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    for username in ("", "user", "abc:user", "-5:user", ":user", "1.5:user"):
        digest = hmac.new(b"s", username.encode(), hashlib.sha1).digest()
        assert not is_valid("s", username, base64.b64encode(digest).decode(), now)


def test_anonymous_users_differ() -> None:
    names = {anonymous_user() for _ in range(20)}
    assert len(names) == 20
    assert all(len(n) == 16 and ":" not in n for n in names)
