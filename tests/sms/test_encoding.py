from __future__ import annotations

import pytest
from hypothesis import given

from sms.encoding import (
    DataCoding,
    choose_data_coding,
    decode_payload,
    encode_text,
    text_alphabet,
    utf16_unit_count,
)
from tests.sms.strategies import any_text, gsm_text, mixed_text


@pytest.mark.parametrize(
    ("text", "coding"),
    [
        ("", DataCoding.SMSC_DEFAULT),
        ("Hello {world} €5", DataCoding.SMSC_DEFAULT),
        ("ça va", DataCoding.UCS2),
        ("hi 😀", DataCoding.UCS2),
        ("Привет", DataCoding.UCS2),
    ],
)
def test_choose_data_coding(text: str, coding: DataCoding) -> None:
    assert choose_data_coding(text) == coding


def test_ucs2_is_utf16be_with_surrogate_pairs() -> None:
    assert encode_text("A😀", DataCoding.UCS2) == bytes.fromhex("0041d83dde00")
    assert utf16_unit_count("A😀") == 3


def test_latin1_and_ia5_are_not_outbound_codings() -> None:
    with pytest.raises(ValueError, match="outbound"):
        encode_text("x", DataCoding.LATIN1)
    with pytest.raises(ValueError, match="outbound"):
        encode_text("x", DataCoding.IA5)


@pytest.mark.parametrize(
    ("payload", "coding", "text"),
    [
        (b"hello \x1b\x65", 0x00, "hello €"),
        (b"plain ascii", 0x01, "plain ascii"),
        (b"caf\xe9", 0x03, "café"),
        (bytes.fromhex("00e7d83dde00"), 0x08, "ç😀"),
        (b"hi", 0xF0, "hi"),
        (b"hi", 0x11, "hi"),
        (bytes.fromhex("0041"), 0x18, "A"),
    ],
)
def test_decode_payload_by_data_coding(payload: bytes, coding: int, text: str) -> None:
    result = decode_payload(payload, coding)
    assert result.decoded
    assert result.text == text
    assert result.raw == payload


def test_ia5_octets_beyond_ascii_become_replacement_characters() -> None:
    assert decode_payload(b"a\xff", 0x01).text == "a\ufffd"


def test_odd_ucs2_payload_is_decoded_with_a_replacement() -> None:
    assert decode_payload(b"\x00A\x00", 0x08).text == "A\ufffd"


@pytest.mark.parametrize("coding", [0x02, 0x04, 0x05, 0xF4, 0x14, 0x40, 0xC0])
def test_unknown_or_binary_codings_are_kept_behind_a_marker(coding: int) -> None:
    result = decode_payload(b"\x01\xfe", coding)
    assert not result.decoded
    assert result.raw == b"\x01\xfe"
    assert result.text == f"[undecoded data_coding=0x{coding:02X} 2 octets: 01fe]"
    assert text_alphabet(coding) is None


@given(any_text)
def test_ucs2_round_trips_all_unicode(text: str) -> None:
    assert decode_payload(encode_text(text, DataCoding.UCS2), DataCoding.UCS2).text == text


@given(gsm_text)
def test_gsm_round_trips_through_data_coding_0(text: str) -> None:
    assert decode_payload(encode_text(text, DataCoding.SMSC_DEFAULT), 0x00).text == text


@given(mixed_text)
def test_chosen_coding_round_trips(text: str) -> None:
    coding = choose_data_coding(text)
    assert decode_payload(encode_text(text, coding), coding).text == text


def test_an_smsc_whose_default_alphabet_is_latin1() -> None:
    assert decode_payload(b"caf\xe9 @", 0x00, smsc_default=DataCoding.LATIN1).text == "café @"
    assert decode_payload(b"a@", 0x00, smsc_default=DataCoding.IA5).text == "a@"
    # A scheme that names GSM 7-bit explicitly stays GSM.
    assert decode_payload(b"\x00", 0xF0, smsc_default=DataCoding.LATIN1).text == "@"
    with pytest.raises(ValueError, match="default alphabet"):
        decode_payload(b"", 0x00, smsc_default=DataCoding.UCS2)
