from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.encoding import DataCoding
from sms.reassembly import (
    AddOutcome,
    InboundPart,
    Reassembler,
    ReassemblyKey,
    inbound_part_from_pdu,
)
from sms.segmentation import ConcatenationMode, Segment, segment_message
from sms.udh import ConcatInfo, build_concat_udh
from tests.sms.strategies import mixed_text

SOURCE = "+15550001111"
DESTINATION = "+15550002222"


def udh_part(reference: int, total: int, sequence: int, payload: bytes, data_coding: int = 0) -> InboundPart:
    return inbound_part_from_pdu(
        source=SOURCE,
        destination=DESTINATION,
        esm_class=0x40,
        data_coding=data_coding,
        short_message=build_concat_udh(reference, total, sequence) + payload,
    )


def part_from_segment(segment: Segment) -> InboundPart:
    sar = segment.sar
    return inbound_part_from_pdu(
        source=SOURCE,
        destination=DESTINATION,
        esm_class=segment.esm_class_flags,
        data_coding=segment.data_coding,
        short_message=segment.short_message,
        sar_msg_ref_num=sar.msg_ref_num if sar else None,
        sar_total_segments=sar.total_segments if sar else None,
        sar_segment_seqnum=sar.segment_seqnum if sar else None,
    )


def test_a_message_without_concatenation_completes_at_once() -> None:
    part = inbound_part_from_pdu(
        source=SOURCE, destination=DESTINATION, esm_class=0, data_coding=0, short_message=b"hi \x1b\x65"
    )
    result = Reassembler().add(part, now=0)
    assert result.outcome == AddOutcome.COMPLETE
    assert result.message is not None
    assert result.message.text == "hi €"
    assert result.message.segment_count == 1
    assert result.message.reference is None


def test_parts_out_of_order_complete_once_all_arrived() -> None:
    reassembler = Reassembler()
    assert reassembler.add(udh_part(9, 3, 3, b"!"), now=0).outcome == AddOutcome.PENDING
    assert reassembler.add(udh_part(9, 3, 1, b"Hello, "), now=1).outcome == AddOutcome.PENDING
    assert reassembler.open_set_count == 1
    result = reassembler.add(udh_part(9, 3, 2, b"world"), now=2)
    assert result.outcome == AddOutcome.COMPLETE
    assert result.message is not None
    assert result.message.text == "Hello, world!"
    assert result.message.segment_count == 3
    assert result.message.reference == 9
    assert reassembler.open_set_count == 0


def test_duplicate_parts_are_ignored() -> None:
    reassembler = Reassembler()
    assert reassembler.add(udh_part(1, 2, 1, b"a"), now=0).outcome == AddOutcome.PENDING
    assert reassembler.add(udh_part(1, 2, 1, b"a"), now=0).outcome == AddOutcome.DUPLICATE
    assert reassembler.add(udh_part(1, 2, 2, b"b"), now=0).outcome == AddOutcome.COMPLETE
    # An SMSC retrying a deliver_sm after completion: still a duplicate, not a new set.
    assert reassembler.add(udh_part(1, 2, 2, b"b"), now=5).outcome == AddOutcome.DUPLICATE
    assert reassembler.open_set_count == 0


def test_a_reused_reference_with_new_text_starts_a_new_set() -> None:
    reassembler = Reassembler()
    reassembler.add(udh_part(1, 2, 1, b"a"), now=0)
    reassembler.add(udh_part(1, 2, 2, b"b"), now=0)
    assert reassembler.add(udh_part(1, 2, 1, b"c"), now=1).outcome == AddOutcome.PENDING
    result = reassembler.add(udh_part(1, 2, 2, b"d"), now=1)
    assert result.message is not None
    assert result.message.text == "cd"


def test_sets_are_kept_apart_by_source_destination_reference_and_total() -> None:
    reassembler = Reassembler()
    other_source = InboundPart("+15559999999", DESTINATION, 0, b"x", ConcatInfo(1, 2, 1, 8))
    reassembler.add(udh_part(1, 2, 1, b"a"), now=0)
    reassembler.add(other_source, now=0)
    reassembler.add(udh_part(1, 3, 1, b"z"), now=0)
    reassembler.add(udh_part(2, 2, 1, b"q"), now=0)
    assert reassembler.open_set_count == 4
    result = reassembler.add(udh_part(1, 2, 2, b"b"), now=0)
    assert result.message is not None
    assert result.message.text == "ab"


def test_16bit_reference_and_sar_tlvs() -> None:
    reassembler = Reassembler()
    sixteen = inbound_part_from_pdu(
        source=SOURCE,
        destination=DESTINATION,
        esm_class=0x40,
        data_coding=0,
        short_message=build_concat_udh(0x1234, 2, 2, sixteen_bit_reference=True) + b"two",
    )
    sar = inbound_part_from_pdu(
        source=SOURCE,
        destination=DESTINATION,
        esm_class=0,
        data_coding=0,
        short_message=b"one ",
        sar_msg_ref_num=0x1234,
        sar_total_segments=2,
        sar_segment_seqnum=1,
    )
    assert sixteen.concat == ConcatInfo(0x1234, 2, 2, 16)
    assert sar.concat == ConcatInfo(0x1234, 2, 1, 16)
    reassembler.add(sixteen, now=0)
    result = reassembler.add(sar, now=0)
    assert result.message is not None
    assert result.message.text == "one two"


def test_message_payload_tlv_carries_the_text() -> None:
    part = inbound_part_from_pdu(
        source=SOURCE,
        destination=DESTINATION,
        esm_class=0,
        data_coding=8,
        short_message=b"",
        message_payload="long ж".encode("utf-16-be"),
    )
    assert part.payload == "long ж".encode("utf-16-be")


def test_escape_and_surrogate_pairs_split_by_the_sender_are_joined() -> None:
    reassembler = Reassembler()
    reassembler.add(udh_part(3, 2, 1, b"cost 5\x1b"), now=0)
    result = reassembler.add(udh_part(3, 2, 2, b"\x65"), now=0)
    assert result.message is not None
    assert result.message.text == "cost 5€"
    reassembler.add(udh_part(4, 2, 1, bytes.fromhex("0041d83d"), data_coding=8), now=0)
    result = reassembler.add(udh_part(4, 2, 2, bytes.fromhex("de00"), data_coding=8), now=0)
    assert result.message is not None
    assert result.message.text == "A😀"


def test_parts_in_different_codings_are_decoded_each_in_its_own() -> None:
    reassembler = Reassembler()
    reassembler.add(udh_part(5, 2, 1, b"caf\xe9 ", data_coding=3), now=0)
    result = reassembler.add(udh_part(5, 2, 2, "ж".encode("utf-16-be"), data_coding=8), now=0)
    assert result.message is not None
    assert result.message.text == "café ж"
    assert result.message.decoded


def test_unknown_coding_is_marked_not_decoded() -> None:
    part = inbound_part_from_pdu(
        source=SOURCE, destination=DESTINATION, esm_class=0, data_coding=0x04, short_message=b"\x00\xff"
    )
    result = Reassembler().add(part, now=0)
    assert result.message is not None
    assert not result.message.decoded
    assert result.message.text == "[undecoded data_coding=0x04 2 octets: 00ff]"


def test_malformed_udh_keeps_the_octets_as_a_whole_message() -> None:
    part = inbound_part_from_pdu(
        source=SOURCE, destination=DESTINATION, esm_class=0x40, data_coding=0, short_message=b"\x20abc"
    )
    assert part.malformed_udh
    assert part.concat is None
    assert Reassembler().add(part, now=0).outcome == AddOutcome.COMPLETE


def test_invalid_concatenation_values_make_a_whole_message() -> None:
    part = udh_part(1, 2, 1, b"x")
    bad = inbound_part_from_pdu(
        source=SOURCE,
        destination=DESTINATION,
        esm_class=0x40,
        data_coding=0,
        short_message=bytes.fromhex("050003010203") + b"x",
    )
    assert part.concat is not None
    assert bad.concat is None
    sar_zero = inbound_part_from_pdu(
        source=SOURCE,
        destination=DESTINATION,
        esm_class=0,
        data_coding=0,
        short_message=b"x",
        sar_msg_ref_num=1,
        sar_total_segments=2,
        sar_segment_seqnum=0,
    )
    assert sar_zero.concat is None


def test_incomplete_sets_expire_after_the_timeout_from_their_first_part() -> None:
    reassembler = Reassembler(timeout_seconds=60)
    reassembler.add(udh_part(7, 3, 2, b"middle"), now=100)
    reassembler.add(udh_part(7, 3, 1, b"start "), now=130)
    assert reassembler.next_deadline() == 160
    assert reassembler.expire(now=159.9) == []
    (expired,) = reassembler.expire(now=160)
    assert expired.key == ReassemblyKey(SOURCE, DESTINATION, 7, 3)
    assert expired.received == (1, 2)
    assert expired.missing == (3,)
    assert expired.partial_text == "start middle[missing part 3]"
    assert expired.first_seen == 100
    assert reassembler.open_set_count == 0
    assert reassembler.next_deadline() is None


def test_a_stale_set_is_replaced_when_its_key_comes_back() -> None:
    reassembler = Reassembler(timeout_seconds=60)
    reassembler.add(udh_part(7, 2, 1, b"old"), now=0)
    assert reassembler.add(udh_part(7, 2, 2, b"new"), now=61).outcome == AddOutcome.PENDING
    (expired,) = reassembler.expire(now=62)
    assert expired.partial_text == "old[missing part 2]"
    assert reassembler.open_set_count == 1


def test_the_oldest_set_is_expired_early_when_too_many_are_open() -> None:
    reassembler = Reassembler(timeout_seconds=600, max_open_sets=2)
    for reference in range(3):
        reassembler.add(udh_part(reference, 2, 2, b"x"), now=reference)
    assert reassembler.open_set_count == 2
    (expired,) = reassembler.expire(now=3)
    assert expired.key.reference == 0
    assert expired.partial_text == "[missing part 1]x"


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Reassembler(timeout_seconds=0)
    with pytest.raises(ValueError, match="max_open_sets"):
        Reassembler(max_open_sets=0)


@given(
    mixed_text,
    st.sampled_from(list(ConcatenationMode)),
    st.integers(0, 255),
    st.randoms(use_true_random=False),
    st.integers(0, 5),
)
def test_shuffled_duplicated_parts_reassemble_the_original(
    text: str, mode: ConcatenationMode, reference: int, rng: random.Random, extra_copies: int
) -> None:
    message = segment_message(text, reference=reference, mode=mode)
    parts = [part_from_segment(segment) for segment in message]
    delivered = parts + [rng.choice(parts) for _ in range(extra_copies)]
    rng.shuffle(delivered)
    reassembler = Reassembler()
    completed = []
    for index, part in enumerate(delivered):
        result = reassembler.add(part, now=index)
        if result.outcome == AddOutcome.COMPLETE:
            completed.append(result.message)
    if len(parts) > 1:
        assert len(completed) == 1
    else:
        # Without concatenation every copy is a message of its own; the layer above
        # deduplicates those by SMSC message id.
        assert len(completed) == 1 + extra_copies
    assert all(message is not None and message.text == text for message in completed)
    assert reassembler.open_set_count == 0
    assert reassembler.expire(now=10_000) == []


def test_reassembler_applies_the_smsc_default_alphabet() -> None:
    reassembler = Reassembler(smsc_default=DataCoding.LATIN1)
    reassembler.add(udh_part(8, 2, 1, b"caf"), now=0)
    result = reassembler.add(udh_part(8, 2, 2, b"\xe9"), now=0)
    assert result.message is not None
    assert result.message.text == "café"
