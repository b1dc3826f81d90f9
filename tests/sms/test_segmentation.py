from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.encoding import DataCoding, decode_payload
from sms.gsm7 import ESCAPE, NotGsm7EncodableError, gsm7_char_septets, unpack_septets
from sms.segmentation import (
    MAX_MESSAGE_CHARACTERS,
    ConcatenationMode,
    MessageTooLongError,
    ReferenceAllocator,
    SarParameters,
    SegmentedMessage,
    packed_user_data,
    part_limit,
    segment_count,
    segment_message,
)
from sms.udh import ESM_CLASS_UDHI, build_concat_udh
from tests.sms.strategies import gsm_text, mixed_text

modes = st.sampled_from(list(ConcatenationMode))


def lengths(message: SegmentedMessage) -> list[int]:
    return [segment.length for segment in message]


def test_160_gsm_characters_are_one_part() -> None:
    message = segment_message("a" * 160)
    assert len(message) == 1
    (part,) = message
    assert part.udh == b""
    assert part.esm_class_flags == 0
    assert part.short_message == b"a" * 160
    assert part.data_coding == DataCoding.SMSC_DEFAULT
    assert message.reference is None


def test_161_gsm_characters_are_two_parts_of_153_and_8() -> None:
    message = segment_message("a" * 161, reference=0x42)
    assert lengths(message) == [153, 8]
    first, second = message
    assert first.udh == bytes.fromhex("050003420201")
    assert second.udh == bytes.fromhex("050003420202")
    assert first.short_message == first.udh + b"a" * 153
    assert first.esm_class_flags == ESM_CLASS_UDHI
    assert message.reference == 0x42


def test_70_ucs2_units_are_one_part_and_71_are_two() -> None:
    assert len(segment_message("ж" * 70)) == 1
    message = segment_message("ж" * 71)
    assert lengths(message) == [67, 4]
    assert message.data_coding == DataCoding.UCS2
    assert len(message.segments[0].payload) == 134


def test_extension_characters_count_twice_in_the_single_part_limit() -> None:
    assert segment_count("€" * 80) == 1
    assert segment_count("€" * 80 + "a") == 2


def test_escape_pair_at_the_153rd_septet_moves_whole() -> None:
    text = "a" * 152 + "€" + "b" * 10
    first, second = segment_message(text)
    assert first.text == "a" * 152
    assert first.length == 152
    assert first.payload[-1] != ESCAPE
    assert second.text == "€" + "b" * 10
    assert second.payload == b"\x1b\x65" + b"b" * 10


def test_emoji_straddling_the_67_unit_boundary_moves_whole() -> None:
    text = "a" * 66 + "😀" + "b" * 10
    first, second = segment_message(text)
    assert first.text == "a" * 66
    assert first.length == 66
    assert second.text == "😀" + "b" * 10
    assert second.payload[:4] == bytes.fromhex("d83dde00")


def test_16bit_reference_mode_uses_7_octet_headers_and_152_66_limits() -> None:
    message = segment_message("a" * 161, reference=0x1234, mode=ConcatenationMode.UDH_16BIT_REFERENCE)
    assert lengths(message) == [152, 9]
    assert message.segments[0].udh == build_concat_udh(0x1234, 2, 1, sixteen_bit_reference=True)
    ucs2 = segment_message("ж" * 71, mode=ConcatenationMode.UDH_16BIT_REFERENCE)
    assert lengths(ucs2) == [66, 5]


def test_sar_mode_puts_concatenation_in_tlvs_not_a_header() -> None:
    message = segment_message("a" * 200, reference=0xBEEF, mode=ConcatenationMode.SAR_TLV)
    assert lengths(message) == [152, 48]
    for sequence, part in enumerate(message, start=1):
        assert part.udh == b""
        assert part.esm_class_flags == 0
        assert part.short_message == part.payload
        assert part.sar == SarParameters(0xBEEF, 2, sequence)


def test_single_part_needs_no_sar_tlvs() -> None:
    (part,) = segment_message("short", mode=ConcatenationMode.SAR_TLV)
    assert part.sar is None


def test_empty_text_is_one_empty_part() -> None:
    (part,) = segment_message("")
    assert part.short_message == b""
    assert segment_count("") == 1


def test_ucs2_can_be_forced_for_gsm_text() -> None:
    message = segment_message("hello", data_coding=DataCoding.UCS2)
    assert message.segments[0].payload == "hello".encode("utf-16-be")


def test_gsm_cannot_be_forced_for_text_it_lacks() -> None:
    with pytest.raises(NotGsm7EncodableError):
        segment_message("ça", data_coding=DataCoding.SMSC_DEFAULT)
    with pytest.raises(ValueError, match="outbound"):
        segment_message("a", data_coding=DataCoding.LATIN1)


@pytest.mark.parametrize(
    ("mode", "reference"),
    [
        (ConcatenationMode.UDH_8BIT_REFERENCE, 256),
        (ConcatenationMode.UDH_16BIT_REFERENCE, 65536),
        (ConcatenationMode.SAR_TLV, -1),
    ],
)
def test_reference_must_fit_the_mode(mode: ConcatenationMode, reference: int) -> None:
    with pytest.raises(ValueError, match="reference"):
        segment_message("a", reference=reference, mode=mode)


def test_more_than_255_parts_is_refused() -> None:
    with pytest.raises(MessageTooLongError):
        segment_message("a" * (153 * 255 + 1))
    assert len(segment_message("a" * (153 * 255))) == 255


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a" * MAX_MESSAGE_CHARACTERS, 14),
        ("€" * MAX_MESSAGE_CHARACTERS, 27),
        ("😀" * MAX_MESSAGE_CHARACTERS, 63),
    ],
)
def test_the_longest_acs_messages_fit(text: str, parts: int) -> None:
    for mode in ConcatenationMode:
        message = segment_message(text, reference=200, mode=mode)
        assert len(message) <= 255
    assert segment_count(text) == parts


def test_lone_surrogates_pass_through_ucs2() -> None:
    # Strings built with surrogatepass can hold a pair as two code points; it stays together.
    text = "a" * 66 + "\ud83d\ude00" + "\ud800" * 3
    first, second = segment_message(text)
    assert first.text == "a" * 66
    assert second.payload == bytes.fromhex("d83dde00" + "d800" * 3)


def _check_invariants(text: str, message: SegmentedMessage) -> None:
    assert "".join(part.text for part in message) == text
    assert segment_count(text, mode=message.mode, data_coding=message.data_coding) == len(message)
    total = len(message)
    single = total == 1
    limit = part_limit(message.data_coding, message.mode, single=single)
    for sequence, part in enumerate(message, start=1):
        assert (part.sequence, part.total) == (sequence, total)
        assert part.length <= limit
        assert part.short_message == part.udh + part.payload
        assert decode_payload(part.payload, part.data_coding).text == part.text
        if message.data_coding == DataCoding.SMSC_DEFAULT:
            assert len(part.payload) == part.length
            assert not part.payload.endswith(bytes([ESCAPE]))
        else:
            assert len(part.payload) == 2 * part.length
            if part.payload:
                first_unit = int.from_bytes(part.payload[:2], "big")
                last_unit = int.from_bytes(part.payload[-2:], "big")
                assert not 0xDC00 <= first_unit <= 0xDFFF
                assert not 0xD800 <= last_unit <= 0xDBFF
        if single:
            assert part.udh == b""
            assert part.sar is None
        elif message.mode == ConcatenationMode.SAR_TLV:
            assert part.sar == SarParameters(message.reference or 0, total, sequence)
        else:
            assert part.esm_class_flags == ESM_CLASS_UDHI
    # Greedy filling: no part could have taken the first character of the next one.
    for part, following in zip(message.segments, message.segments[1:], strict=False):
        first_char = following.text[0]
        if message.data_coding == DataCoding.SMSC_DEFAULT:
            cost = gsm7_char_septets(first_char)
        else:
            cost = 2 if ord(first_char) > 0xFFFF else 1
        assert part.length + cost > limit


@given(mixed_text, modes, st.integers(0, 255))
def test_parts_reassemble_the_text_and_respect_limits(text: str, mode: ConcatenationMode, ref: int) -> None:
    _check_invariants(text, segment_message(text, reference=ref, mode=mode))


@given(gsm_text, modes)
def test_gsm_text_is_split_on_character_boundaries(text: str, mode: ConcatenationMode) -> None:
    message = segment_message(text, mode=mode)
    assert message.data_coding == DataCoding.SMSC_DEFAULT
    _check_invariants(text, message)


@given(mixed_text, modes)
def test_forced_ucs2_keeps_the_invariants(text: str, mode: ConcatenationMode) -> None:
    _check_invariants(text, segment_message(text, mode=mode, data_coding=DataCoding.UCS2))


@given(st.text(alphabet=st.sampled_from(["a", "€", "😀", "ж"]), min_size=140, max_size=2048), modes)
def test_long_boundary_heavy_texts(text: str, mode: ConcatenationMode) -> None:
    _check_invariants(text, segment_message(text, reference=7, mode=mode))


def test_packed_user_data_aligns_text_after_the_header() -> None:
    first, _ = segment_message("hello" * 40, reference=1)
    packed = packed_user_data(first)
    assert packed[:6] == first.udh
    # 6-octet UDH + 1 fill bit + 153 septets = 7 + 153 septets = 160 septets = 140 octets.
    assert len(packed) == 140
    assert unpack_septets(packed[6:], 153, fill_bits=1) == first.payload
    single = segment_message("hello").segments[0]
    assert packed_user_data(single).hex() == "e8329bfd06"
    ucs2 = segment_message("ж").segments[0]
    assert packed_user_data(ucs2) == ucs2.short_message


@given(
    gsm_text, st.sampled_from([ConcatenationMode.UDH_8BIT_REFERENCE, ConcatenationMode.UDH_16BIT_REFERENCE])
)
def test_packed_parts_fit_140_octets(text: str, mode: ConcatenationMode) -> None:
    for part in segment_message(text, mode=mode):
        assert len(packed_user_data(part)) <= 140


def test_references_cycle_per_recipient() -> None:
    allocator = ReferenceAllocator(ConcatenationMode.UDH_8BIT_REFERENCE, start=254)
    assert [allocator.allocate("+1555") for _ in range(3)] == [254, 255, 0]
    assert allocator.allocate("+1666") == 254
    sixteen = ReferenceAllocator(ConcatenationMode.SAR_TLV, start=70_000)
    assert sixteen.allocate("+1555") == 70_000 % 65_536


def test_reference_allocator_forgets_least_recently_used_recipients() -> None:
    allocator = ReferenceAllocator(ConcatenationMode.UDH_8BIT_REFERENCE, max_recipients=2)
    allocator.allocate("a")
    allocator.allocate("b")
    allocator.allocate("a")
    allocator.allocate("c")  # forgets b, the least recently used
    assert allocator.allocate("a") == 2
    assert allocator.allocate("b") == 0
