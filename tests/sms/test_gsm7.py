from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.gsm7 import (
    DEFAULT_ALPHABET,
    ESCAPE,
    EXTENSION_TABLE,
    GSM7_CHARACTERS,
    NotGsm7EncodableError,
    can_encode_gsm7,
    decode_gsm7,
    encode_gsm7,
    gsm7_septet_count,
    pack_septets,
    unpack_septets,
)
from tests.sms.strategies import gsm_text


def test_tables_have_the_sizes_of_ts_23_038() -> None:
    assert len(DEFAULT_ALPHABET) == 128
    assert len(set(DEFAULT_ALPHABET)) == 128
    assert DEFAULT_ALPHABET[ESCAPE] == "\x1b"
    assert len(EXTENSION_TABLE) == 10
    assert len(GSM7_CHARACTERS) == 127 + 10


@pytest.mark.parametrize(
    ("code", "char"),
    [(0x00, "@"), (0x02, "$"), (0x09, "Ç"), (0x10, "Δ"), (0x24, "¤"), (0x40, "¡"), (0x5F, "§"), (0x60, "¿")],
)
def test_default_alphabet_positions(code: int, char: str) -> None:
    assert encode_gsm7(char) == bytes([code])


def test_hello_unpacked_is_ascii_codes() -> None:
    assert encode_gsm7("hello") == b"hello"


def test_hello_packs_to_the_known_octets() -> None:
    assert pack_septets(encode_gsm7("hello")).hex() == "e8329bfd06"


def test_hellohello_packs_to_the_known_octets() -> None:
    assert pack_septets(encode_gsm7("hellohello")).hex() == "e8329bfd4697d9ec37"


@pytest.mark.parametrize(
    ("char", "code"),
    [
        ("\f", 0x0A),
        ("^", 0x14),
        ("{", 0x28),
        ("}", 0x29),
        ("\\", 0x2F),
        ("[", 0x3C),
        ("~", 0x3D),
        ("]", 0x3E),
        ("|", 0x40),
        ("€", 0x65),
    ],
)
def test_extension_characters_are_escaped(char: str, code: int) -> None:
    assert encode_gsm7(char) == bytes([ESCAPE, code])
    assert gsm7_septet_count(char) == 2
    assert decode_gsm7(bytes([ESCAPE, code])) == char


def test_euro_and_bracket_in_text() -> None:
    assert encode_gsm7("5€ [x]") == b"5\x1b\x65 \x1b\x3cx\x1b\x3e"
    assert gsm7_septet_count("5€ [x]") == 9


@pytest.mark.parametrize("text", ["ç", "`", "\x1b", "😀", "Привет", "\t", "ê"])
def test_characters_outside_both_tables(text: str) -> None:
    assert not can_encode_gsm7(text)


@pytest.mark.parametrize("text", ["", "Hello, world!", "ÄÖÑÜ§¿äöñüà", "ΔΦΓΛΩΠΨΣΘΞ", "a\nb\rc", "{[€]}"])
def test_encodable_texts(text: str) -> None:
    assert can_encode_gsm7(text)


def test_encoding_an_unencodable_character_names_it() -> None:
    with pytest.raises(NotGsm7EncodableError) as raised:
        encode_gsm7("ok ç")
    assert raised.value.character == "ç"
    assert raised.value.position == 3
    assert "U+00E7" in str(raised.value)


def test_escape_before_an_unknown_extension_code_shows_the_default_character() -> None:
    assert decode_gsm7(bytes([ESCAPE, 0x41])) == "A"


def test_lone_trailing_escape_is_dropped() -> None:
    assert decode_gsm7(b"ab\x1b") == "ab"


def test_escape_escape_is_rendered_as_space() -> None:
    assert decode_gsm7(b"a\x1b\x1bb") == "a b"


def test_octets_with_the_high_bit_are_not_septets() -> None:
    assert decode_gsm7(b"a\xe9") == "a\ufffd"
    assert decode_gsm7(b"\x1b\xe9") == "\ufffd"


def test_seven_septets_leave_a_spare_septet_that_only_the_count_disambiguates() -> None:
    packed = pack_septets(encode_gsm7("abcdefg"))
    assert len(packed) == 7
    assert unpack_septets(packed) == b"abcdefg\x00"
    assert unpack_septets(packed, 7) == b"abcdefg"


def test_fill_bits_shift_the_first_septet() -> None:
    # After a 6-octet UDH one fill bit aligns the text to a septet boundary.
    assert pack_septets(b"\x7f", fill_bits=1) == b"\xfe"
    assert unpack_septets(b"\xfe", 1, fill_bits=1) == b"\x7f"


def test_pack_rejects_non_septets_and_bad_fill() -> None:
    with pytest.raises(ValueError, match="not a septet"):
        pack_septets(b"\x80")
    with pytest.raises(ValueError, match="fill_bits"):
        pack_septets(b"a", fill_bits=7)
    with pytest.raises(ValueError, match="septets"):
        unpack_septets(b"\x00", 3)


@given(gsm_text)
def test_decode_inverts_encode_for_every_gsm_text(text: str) -> None:
    assert decode_gsm7(encode_gsm7(text)) == text
    assert len(encode_gsm7(text)) == gsm7_septet_count(text)


@given(st.binary(max_size=200).map(lambda data: bytes(b & 0x7F for b in data)), st.integers(0, 6))
def test_unpack_inverts_pack(septets: bytes, fill_bits: int) -> None:
    packed = pack_septets(septets, fill_bits)
    assert len(packed) == (fill_bits + 7 * len(septets) + 7) // 8
    assert unpack_septets(packed, len(septets), fill_bits) == septets


@given(st.binary(max_size=200))
def test_decode_never_raises(data: bytes) -> None:
    decode_gsm7(data)
