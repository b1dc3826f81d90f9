from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.udh import (
    ConcatInfo,
    InformationElement,
    MalformedUdhError,
    build_concat_udh,
    concat_info_from_udh,
    parse_information_elements,
    split_udh,
    udh_fill_bits,
)


def test_8bit_reference_header() -> None:
    assert build_concat_udh(0xAB, 3, 2) == bytes.fromhex("050003ab0302")


def test_16bit_reference_header() -> None:
    assert build_concat_udh(0x1234, 3, 1, sixteen_bit_reference=True) == bytes.fromhex("06080412340301")


@pytest.mark.parametrize(
    ("reference", "total", "sequence", "sixteen"),
    [
        (256, 2, 1, False),
        (-1, 2, 1, False),
        (70000, 2, 1, True),
        (1, 0, 1, False),
        (1, 256, 1, False),
        (1, 2, 0, False),
        (1, 2, 3, False),
    ],
)
def test_out_of_range_values_are_refused(reference: int, total: int, sequence: int, sixteen: bool) -> None:
    with pytest.raises(ValueError):
        build_concat_udh(reference, total, sequence, sixteen_bit_reference=sixteen)


def test_split_udh() -> None:
    assert split_udh(bytes.fromhex("050003010201") + b"text") == (bytes.fromhex("050003010201"), b"text")


@pytest.mark.parametrize("short_message", [b"", b"\x09\x00\x03"])
def test_split_udh_refuses_truncated_headers(short_message: bytes) -> None:
    with pytest.raises(MalformedUdhError):
        split_udh(short_message)


def test_other_elements_are_skipped() -> None:
    # Application port addressing (IEI 0x05) before the concatenation element.
    udh = bytes.fromhex("0b05040b8412340003070201")
    assert parse_information_elements(udh) == [
        InformationElement(0x05, bytes.fromhex("0b841234")),
        InformationElement(0x00, bytes.fromhex("070201")),
    ]
    assert concat_info_from_udh(udh) == ConcatInfo(7, 2, 1, 8)


def test_no_concatenation_element() -> None:
    assert concat_info_from_udh(bytes.fromhex("0605040b841234")) is None


@pytest.mark.parametrize("udh_hex", ["050003010200", "050003010203", "050003010000"])
def test_invalid_sequence_or_total_ignores_the_element(udh_hex: str) -> None:
    # TS 23.040 §9.2.3.24.1: zero, or a sequence beyond the total, voids the element.
    assert concat_info_from_udh(bytes.fromhex(udh_hex)) is None


@pytest.mark.parametrize("udh_hex", ["060003010201", "0500050102", "03000301"])
def test_malformed_element_lengths(udh_hex: str) -> None:
    with pytest.raises(MalformedUdhError):
        parse_information_elements(bytes.fromhex(udh_hex))


@given(
    st.integers(0, 0xFFFF), st.integers(1, 255).flatmap(lambda t: st.tuples(st.just(t), st.integers(1, t)))
)
def test_built_headers_parse_back(reference: int, total_and_sequence: tuple[int, int]) -> None:
    total, sequence = total_and_sequence
    sixteen = reference > 0xFF
    udh = build_concat_udh(reference, total, sequence, sixteen_bit_reference=sixteen)
    assert len(udh) == (7 if sixteen else 6)
    assert concat_info_from_udh(udh) == ConcatInfo(reference, total, sequence, 16 if sixteen else 8)


@pytest.mark.parametrize(("length", "fill"), [(0, 0), (6, 1), (7, 0), (1, 6), (12, 2)])
def test_fill_bits_after_a_header(length: int, fill: int) -> None:
    assert udh_fill_bits(length) == fill
    assert (length * 8 + fill) % 7 == 0
