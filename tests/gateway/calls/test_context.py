"""incomingCallContext: signed, bound to its resource, dead after the ring time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.calls import context
from gateway.identity.tokens import SigningKey


def _key() -> SigningKey:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey.from_pem(pem)


KEY, OTHER = _key(), _key()
NOW = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)


@settings(max_examples=30, deadline=None)
@given(call=st.uuids().map(str), resource=st.uuids().map(str), seconds=st.integers(1, 600))
def test_round_trip(call: str, resource: str, seconds: int) -> None:
    expires = NOW + timedelta(seconds=seconds)
    token = context.sign(context.IncomingCallContext(call, resource, expires), KEY, "trunkline")
    found = context.verify(token, [OTHER, KEY], "trunkline", NOW)
    assert (found.call_id, found.resource_id) == (call, resource)
    with pytest.raises(context.ExpiredContext):
        context.verify(token, [KEY], "trunkline", expires)


def test_forged_or_foreign_contexts_are_invalid() -> None:
    token = context.sign(context.IncomingCallContext("c", "r", NOW + timedelta(minutes=1)), KEY, "trunkline")
    with pytest.raises(context.InvalidContext):
        context.verify(token, [OTHER], "trunkline", NOW)  # not our key
    with pytest.raises(context.InvalidContext):
        context.verify(token, [KEY], "someone-else", NOW)
    with pytest.raises(context.InvalidContext):
        context.verify(token[:-4] + "AAAA", [KEY], "trunkline", NOW)
    with pytest.raises(context.InvalidContext):
        context.verify("not a token", [KEY], "trunkline", NOW)
