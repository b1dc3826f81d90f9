"""Sealing and opening stored secrets (gateway/core/secrets.py): round trips, tampering, key ids,
rotation, key files."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.secrets import (
    PREFIX,
    NoSecretsKey,
    SecretsKey,
    SecretsKeyring,
    TamperedSecret,
    UnknownSecretsKey,
    generate_key,
    is_sealed,
    key_files,
    open_sealed,
    parse_keys,
    seal,
    sealed_key_id,
    write_key_file,
)

KEY = SecretsKey(bytes(range(32)))
OTHER = SecretsKey(bytes(range(1, 33)))
purposes = st.text(min_size=1, max_size=40)


@given(plain=st.text(), purpose=purposes)
def test_round_trip(plain: str, purpose: str) -> None:
    stored = seal(KEY, plain, purpose)
    assert is_sealed(stored)
    assert sealed_key_id(stored) == KEY.kid
    assert open_sealed([OTHER, KEY], stored, purpose) == plain


@given(plain=st.text(min_size=1))
def test_each_sealing_differs(plain: str) -> None:
    assert seal(KEY, plain, "p") != seal(KEY, plain, "p")  # a fresh nonce each time


def _flip(stored: str, index: int, bit: int) -> str:
    kid, payload = stored[len(PREFIX) :].split(":")
    data = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data[index % len(data)] ^= 1 << bit
    return f"{PREFIX}{kid}:{base64.urlsafe_b64encode(bytes(data)).rstrip(b'=').decode()}"


@given(plain=st.text(), index=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_changed_bit_is_refused(plain: str, index: int, bit: int) -> None:
    with pytest.raises(TamperedSecret):
        open_sealed([KEY], _flip(seal(KEY, plain, "p"), index, bit), "p")


@given(plain=st.text(), cut=st.integers(min_value=1, max_value=60))
def test_a_truncated_value_is_refused(plain: str, cut: int) -> None:
    stored = seal(KEY, plain, "p")
    with pytest.raises((TamperedSecret, UnknownSecretsKey)):
        open_sealed([KEY], stored[: max(len(PREFIX), len(stored) - cut)], "p")


def test_a_value_moved_to_another_column_does_not_open() -> None:
    stored = seal(KEY, "whsec_abc", "event_subscriptions.secret")
    with pytest.raises(TamperedSecret):
        open_sealed([KEY], stored, "resources.primary_key")


def test_a_value_relabelled_with_another_key_id_does_not_open() -> None:
    stored = seal(KEY, "secret", "p")
    relabelled = stored.replace(KEY.kid, OTHER.kid, 1)
    with pytest.raises(TamperedSecret):
        open_sealed([KEY, OTHER], relabelled, "p")


def test_an_unknown_key_is_named() -> None:
    with pytest.raises(UnknownSecretsKey, match=KEY.kid):
        open_sealed([OTHER], seal(KEY, "secret", "p"), "p")


def test_garbage_after_the_prefix_is_refused() -> None:
    for stored in (PREFIX, f"{PREFIX}{KEY.kid}", f"{PREFIX}{KEY.kid}:!!!", f"{PREFIX}{KEY.kid}:AAAA"):
        with pytest.raises(TamperedSecret):
            open_sealed([KEY], stored, "p")


@given(plain=st.text().filter(lambda s: not s.startswith(PREFIX)))
def test_plain_values_read_as_they_are(plain: str) -> None:
    assert open_sealed([], plain, "p") == plain
    assert sealed_key_id(plain) is None


def test_key_ids_are_stable_and_distinct() -> None:
    assert SecretsKey(bytes(range(32))).kid == KEY.kid
    assert KEY.kid != OTHER.kid
    assert ":" not in KEY.kid


def test_keys_parse_in_either_base64_alphabet() -> None:
    material = bytes([0xFB, 0xFF] * 16)  # "+/" in standard base64, "-_" in url-safe
    for text in (
        base64.b64encode(material).decode(),
        base64.urlsafe_b64encode(material).decode().rstrip("="),
    ):
        assert SecretsKey.parse(text).material == material
    assert SecretsKey.parse(KEY.text()) == KEY
    with pytest.raises(ValueError, match="32"):
        SecretsKey.parse(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="32 bytes"):
        SecretsKey(b"short")


def test_parse_keys_keeps_order() -> None:
    assert parse_keys(f" {OTHER.text()} ,{KEY.text()},") == [OTHER, KEY]
    assert parse_keys("") == []


def test_keyring_seals_with_the_first_configured_key_and_opens_with_any() -> None:
    old = SecretsKeyring([KEY])
    stored_old = old.seal("a", "p")
    rotated = SecretsKeyring([OTHER, KEY])
    assert sealed_key_id(rotated.seal("b", "p")) == OTHER.kid
    assert rotated.open(stored_old, "p") == "a"


def test_keyring_without_keys_refuses_to_seal_but_reads_plain(tmp_path: Path) -> None:
    keyring = SecretsKeyring([], tmp_path / "none")
    with pytest.raises(NoSecretsKey, match="TRUNKLINE_SECRETS_KEYS"):
        keyring.seal("x", "p")
    assert keyring.open("plain", "p") == "plain"


def test_key_files_are_private_and_the_newest_seals(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    first_path, first = write_key_file(directory)
    assert stat.S_IMODE(first_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    keyring = SecretsKeyring([], directory)
    stored = keyring.seal("x", "p")
    assert sealed_key_id(stored) == first.kid

    _, second = write_key_file(directory)  # another process rotates
    assert sealed_key_id(keyring.seal("y", "p")) == second.kid  # seen without a restart
    assert keyring.open(stored, "p") == "x"
    assert key_files(directory)[0].name.endswith(f"{second.kid}.key")


def test_configured_keys_come_before_the_directory(tmp_path: Path) -> None:
    write_key_file(tmp_path)
    keyring = SecretsKeyring([KEY], tmp_path)
    assert keyring.sealing_key() == KEY
    assert len(keyring.keys()) == 2


def test_opening_a_value_of_a_key_added_since_rereads_the_directory(tmp_path: Path) -> None:
    keyring = SecretsKeyring([KEY], tmp_path)
    keyring.keys()
    _, newer = write_key_file(tmp_path)
    stored = seal(newer, "from another process", "p")
    assert keyring.open(stored, "p") == "from another process"


def test_generated_keys_are_random() -> None:
    assert generate_key() != generate_key()


def test_keyring_remembers_opened_values_until_its_keys_change(tmp_path: Path) -> None:
    old_key, new_key = generate_key(), generate_key()
    old_path, _ = write_key_file(tmp_path, old_key)
    keyring = SecretsKeyring(directory=tmp_path)
    stored = keyring.seal("whsec_x", "t.c")
    assert keyring.open(stored, "t.c") == "whsec_x"
    assert keyring.open(stored, "t.c") == "whsec_x"  # remembered
    with pytest.raises(TamperedSecret):  # remembered by column too: another still does not open
        keyring.open(stored, "t.other")
    # The key that sealed it is retired and a new one written: once the keys are re-read
    # (sealing re-reads them), the remembered value is forgotten and no longer opens.
    old_path.unlink()
    write_key_file(tmp_path, new_key)
    keyring.seal("x", "t.c")
    with pytest.raises(UnknownSecretsKey):
        keyring.open(stored, "t.c")
