"""The token keyring: key creation, RFC 7638 kids, JWKS, rotation, and token verification."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st

from gateway.identity.tokens import (
    ALGORITHM,
    AUDIENCE,
    SCOPES,
    InvalidToken,
    Keyring,
    SigningKey,
    generate_key_file,
    thumbprint,
)

ISSUER = "trunkline-test"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _issue(keyring: Keyring, *, now: datetime | None = None, lifetime: timedelta = timedelta(hours=1)) -> str:
    token, _ = keyring.issue(
        subject="8:acs:res_user",
        resource_id="res",
        scopes=["chat"],
        generation=0,
        issuer=ISSUER,
        lifetime=lifetime,
        now=now or datetime.now(UTC),
    )
    return token


def _rotate(directory: Path) -> Path:
    """``trunkline keys rotate``, some time after the keys in use were loaded.

    File systems with coarse timestamps could give the new key (and the directory) the same
    mtime as the previous change; real rotations happen minutes apart, so move them on.
    """
    before = directory.stat().st_mtime_ns
    newest = max(p.stat().st_mtime_ns for p in directory.glob("*.pem"))
    path = generate_key_file(directory)
    later = max(newest, before) + 1_000_000
    if path.stat().st_mtime_ns <= newest:
        os.utime(path, ns=(later, later))
    if directory.stat().st_mtime_ns <= before:
        os.utime(directory, ns=(later, later))
    return path


def _pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_creates_a_key_when_there_is_none(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keyring = Keyring(directory)
    key = keyring.signing_key
    files = list(directory.glob("*.pem"))
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o077 == 0
    assert SigningKey.from_pem(files[0].read_bytes()).kid == key.kid
    # Loading again finds the same key rather than making another.
    assert Keyring(directory).signing_key.kid == key.kid
    assert len(list(directory.glob("*.pem"))) == 1


def test_no_key_and_no_create_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="keys rotate"):
        Keyring(tmp_path / "keys", create=False).keys()
    assert not (tmp_path / "keys").exists()


@given(st.integers(min_value=1, max_value=2**255))
def test_kid_is_the_rfc7638_thumbprint(private_value: int) -> None:
    key = ec.derive_private_key(private_value, ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    # RFC 7638 section 3.2: the required members in lexicographic order, no whitespace.
    canonical = f'{{"crv":"P-256","kty":"EC","x":"{_b64url(x)}","y":"{_b64url(y)}"}}'
    expected = _b64url(hashlib.sha256(canonical.encode()).digest())
    assert thumbprint(key.public_key()) == expected
    signing = SigningKey.from_pem(_pem(key))
    assert signing.kid == expected
    jwk = signing.public_jwk()
    assert base64.urlsafe_b64decode(jwk["x"] + "==") == x
    assert base64.urlsafe_b64decode(jwk["y"] + "==") == y


def test_only_p256_keys_are_accepted() -> None:
    with pytest.raises(ValueError, match="P-256"):
        SigningKey.from_pem(_pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(ValueError, match="P-256"):
        SigningKey.from_pem(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))


def test_jwks_verifies_a_token_with_pyjwt(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path)
    token = _issue(keyring)
    jwks = json.loads(json.dumps(keyring.jwks()))  # as served
    assert [k["kid"] for k in jwks["keys"]] == [keyring.signing_key.kid]
    assert all("d" not in k for k in jwks["keys"])  # public halves only
    header = jwt.get_unverified_header(token)
    assert header["alg"] == ALGORITHM
    jwk = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    claims = jwt.decode(token, jwk.key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == "8:acs:res_user"
    assert claims["skypeid"] == "acs:res_user"
    assert claims["resourceId"] == "res"


def test_rotation(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path)
    old_kid = keyring.signing_key.kid
    old_token = _issue(keyring)

    new_path = _rotate(tmp_path)
    new_kid = SigningKey.from_pem(new_path.read_bytes()).kid
    assert keyring.signing_key.kid == new_kid != old_kid  # the running keyring noticed
    new_token = _issue(keyring)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert {k["kid"] for k in keyring.jwks()["keys"]} == {old_kid, new_kid}
    assert keyring.decode(old_token, issuer=ISSUER)["sub"] == "8:acs:res_user"
    assert keyring.decode(new_token, issuer=ISSUER)["sub"] == "8:acs:res_user"

    retired = next(p for p in tmp_path.glob("*.pem") if p != new_path)
    before = tmp_path.stat().st_mtime_ns
    retired.unlink()
    if tmp_path.stat().st_mtime_ns == before:  # coarse timestamps, see _rotate
        os.utime(tmp_path, ns=(before + 1_000_000, before + 1_000_000))
    with pytest.raises(InvalidToken, match="not signed by a key of this gateway"):
        keyring.decode(old_token, issuer=ISSUER)
    assert keyring.decode(new_token, issuer=ISSUER)["sub"] == "8:acs:res_user"
    assert [k["kid"] for k in keyring.jwks()["keys"]] == [new_kid]


def test_newest_key_signs_when_mtimes_tie(tmp_path: Path) -> None:
    """Keys written within one timestamp tick: the newer file (by its stamped name) signs."""
    first = generate_key_file(tmp_path)
    second = generate_key_file(tmp_path)
    assert first.name < second.name
    stamp = first.stat().st_mtime_ns
    for path in (first, second):
        os.utime(path, ns=(stamp, stamp))
    assert Keyring(tmp_path).signing_key.kid == SigningKey.from_pem(second.read_bytes()).kid


def test_pem_override_signs_and_directory_keys_still_verify(tmp_path: Path) -> None:
    directory_token = _issue(Keyring(tmp_path))
    override = ec.generate_private_key(ec.SECP256R1())
    keyring = Keyring(tmp_path, _pem(override).decode())
    assert keyring.signing_key.kid == thumbprint(override.public_key())
    assert keyring.decode(directory_token, issuer=ISSUER)["resourceId"] == "res"
    assert len(keyring.jwks()["keys"]) == 2
    # With only the override, nothing is written to the (empty) directory.
    only = Keyring(tmp_path / "none", _pem(override).decode())
    assert only.decode(_issue(only), issuer=ISSUER)["resourceId"] == "res"
    assert not (tmp_path / "none").exists()


# Rejections -----------------------------------------------------------------------------------


def _flip(segment: str) -> str:
    return ("A" if segment[0] != "A" else "B") + segment[1:]


def test_tampered_token_is_rejected(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path)
    header, payload, signature = _issue(keyring).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["resourceId"] = "someone-else"
    forged_payload = _b64url(json.dumps(claims).encode())
    for forged in (f"{header}.{forged_payload}.{signature}", f"{header}.{payload}.{_flip(signature)}"):
        with pytest.raises(InvalidToken):
            keyring.decode(forged, issuer=ISSUER)


def test_token_from_another_key_with_our_kid_is_rejected(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path)
    claims = jwt.decode(_issue(keyring), options={"verify_signature": False})
    impostor = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(claims, impostor, algorithm=ALGORITHM, headers={"kid": keyring.signing_key.kid})
    with pytest.raises(InvalidToken, match=r"[Ss]ignature"):
        keyring.decode(forged, issuer=ISSUER)


def test_unsigned_and_hmac_tokens_are_rejected(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path)
    claims = jwt.decode(_issue(keyring), options={"verify_signature": False})
    kid = keyring.signing_key.kid
    header = _b64url(json.dumps({"alg": "none", "kid": kid}).encode())
    unsigned = f"{header}.{_b64url(json.dumps(claims).encode())}."
    public_pem = keyring.signing_key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs256 = jwt.encode(claims, hashlib.sha256(public_pem).digest(), algorithm="HS256", headers={"kid": kid})
    for token in (unsigned, hs256):
        with pytest.raises(InvalidToken):
            keyring.decode(token, issuer=ISSUER)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "e30.e30.e30"])
def test_malformed_token_is_rejected(tmp_path: Path, token: str) -> None:
    with pytest.raises(InvalidToken):
        Keyring(tmp_path).decode(token, issuer=ISSUER)


def test_other_issuer_is_rejected(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path)
    with pytest.raises(InvalidToken, match=r"[Ii]ssuer"):
        keyring.decode(_issue(keyring), issuer="someone-else")


def test_expired_token_is_rejected(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path)
    expired = _issue(keyring, now=datetime.now(UTC) - timedelta(hours=2), lifetime=timedelta(hours=1))
    with pytest.raises(InvalidToken, match="expired"):
        keyring.decode(expired, issuer=ISSUER)
    future = _issue(keyring, now=datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(InvalidToken, match="not yet valid"):
        keyring.decode(future, issuer=ISSUER)


# Property ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_keyring(tmp_path_factory: pytest.TempPathFactory) -> Keyring:
    return Keyring(tmp_path_factory.mktemp("keys"))


@given(
    scopes=st.lists(st.sampled_from(SCOPES), unique=True, max_size=len(SCOPES)),
    lifetime_seconds=st.integers(min_value=60, max_value=30 * 86400),
    generation=st.integers(min_value=0, max_value=2**31),
)
def test_claims_round_trip(
    shared_keyring: Keyring, scopes: list[str], lifetime_seconds: int, generation: int
) -> None:
    now = datetime.now(UTC)
    token, expires = shared_keyring.issue(
        subject="8:acs:r_u",
        resource_id="r",
        scopes=scopes,
        generation=generation,
        issuer=ISSUER,
        lifetime=timedelta(seconds=lifetime_seconds),
        now=now,
    )
    claims = shared_keyring.decode(token, issuer=ISSUER)
    assert claims["exp"] - claims["iat"] == lifetime_seconds
    assert claims["iat"] == claims["nbf"] == int(now.timestamp())
    assert expires == datetime.fromtimestamp(claims["exp"], UTC)
    assert [s for s in claims["acsScope"].split(",") if s] == scopes
    assert claims["gen"] == generation
    assert claims["aud"] == AUDIENCE
