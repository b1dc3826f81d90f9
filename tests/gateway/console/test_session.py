"""gateway.console.session: signed session cookies and CSRF tokens, no storage."""

from __future__ import annotations

from gateway.console import session

TOKEN = "operator-token-" + "x" * 32


def test_a_session_is_valid_only_with_its_token_and_until_it_expires() -> None:
    value = session.new_session(TOKEN, now=1_000_000)
    assert session.valid_session(TOKEN, value, now=1_000_010)
    assert not session.valid_session(TOKEN + "y", value, now=1_000_010)  # token rotated: logged out
    assert not session.valid_session(TOKEN, value, now=1_000_000 + session.MAX_AGE_SECONDS + 1)
    issued, nonce, mac = value.split(".")
    assert not session.valid_session(TOKEN, f"{int(issued) + 1}.{nonce}.{mac}", now=1_000_010)
    for junk in ("", "..", "a.b.c", "1.2", "\x00.\x00.\x00"):
        assert not session.valid_session(TOKEN, junk)


def test_csrf_token_is_bound_to_the_session() -> None:
    one, two = session.new_session(TOKEN), session.new_session(TOKEN)
    assert session.valid_csrf(TOKEN, one, session.csrf_token(TOKEN, one))
    assert not session.valid_csrf(TOKEN, two, session.csrf_token(TOKEN, one))
    assert not session.valid_csrf(TOKEN, one, "")


def test_token_matches_needs_a_configured_token() -> None:
    assert session.token_matches(TOKEN, f" {TOKEN} ")
    assert not session.token_matches("", "")
    assert not session.token_matches(TOKEN, "nope")
