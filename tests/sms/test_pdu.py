"""sms.pdu: framing, deliver_sm/data_sm parsing against smpplib's encoder, TLVs, status names."""

from __future__ import annotations

import struct

import pytest
import smpplib.smpp
from hypothesis import given
from hypothesis import strategies as st

from sms import pdu


class _Seq:
    sequence = 7

    def next_sequence(self) -> int:
        return 7


def smpplib_deliver_sm(**fields: object) -> bytes:
    generated: bytes = smpplib.smpp.make_pdu("deliver_sm", client=_Seq(), **fields).generate()
    return generated


addresses = st.text(alphabet="0123456789", min_size=0, max_size=15)


@given(
    source=addresses,
    destination=addresses,
    esm_class=st.integers(0, 255),
    data_coding=st.integers(0, 255),
    short_message=st.binary(min_size=1, max_size=254),
    ref=st.integers(0, 0xFFFF),
    total=st.integers(1, 255),
)
def test_deliver_sm_from_smpplib_parses_back(
    source: str,
    destination: str,
    esm_class: int,
    data_coding: int,
    short_message: bytes,
    ref: int,
    total: int,
) -> None:
    raw = smpplib_deliver_sm(
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr=source,
        dest_addr_ton=5,
        dest_addr_npi=0,
        destination_addr=destination,
        esm_class=esm_class,
        data_coding=data_coding,
        short_message=short_message,
        sar_msg_ref_num=ref,
        sar_total_segments=total,
        sar_segment_seqnum=1,
    )
    parsed = pdu.parse_deliver_sm(raw)
    assert parsed.command == "deliver_sm"
    assert parsed.sequence == 7
    assert (parsed.source, parsed.source_ton, parsed.source_npi) == (source, 1, 1)
    assert (parsed.destination, parsed.dest_ton, parsed.dest_npi) == (destination, 5, 0)
    assert (parsed.esm_class, parsed.data_coding) == (esm_class, data_coding)
    assert parsed.short_message == short_message
    assert parsed.payload == short_message
    assert parsed.tlvs == {"sar_msg_ref_num": ref, "sar_total_segments": total, "sar_segment_seqnum": 1}


def test_receipt_tlvs_and_flags() -> None:
    raw = smpplib_deliver_sm(
        source_addr="15550001111",
        destination_addr="15550002222",
        esm_class=0x04,
        short_message=b"id:abc sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD",
        receipted_message_id="abc",
        message_state=2,
        network_error_code=b"\x03\x00\x00",
    )
    parsed = pdu.parse_deliver_sm(raw)
    assert parsed.is_receipt
    assert parsed.receipted_message_id == "abc"
    assert parsed.message_state == 2
    assert parsed.tlvs["network_error_code"] == b"\x03\x00\x00"


def test_unknown_tlvs_are_kept_by_tag_and_vendor_tlvs_do_not_break_parsing() -> None:
    raw = smpplib_deliver_sm(source_addr="1", destination_addr="2", short_message=b"x")
    raw += struct.pack(">HH", 0x1403, 3) + b"abc"
    raw = struct.pack(">I", len(raw)) + raw[4:]
    parsed = pdu.parse_deliver_sm(raw)
    assert parsed.tlvs == {"0x1403": b"abc"}


def test_message_payload_is_the_payload_when_short_message_is_empty() -> None:
    raw = smpplib_deliver_sm(source_addr="1", destination_addr="2", message_payload=b"long" * 100)
    parsed = pdu.parse_deliver_sm(raw)
    assert parsed.short_message == b""
    assert parsed.payload == b"long" * 100


def test_data_sm_is_parsed() -> None:
    body = b"\x00" + b"\x01\x01" + b"447700900000\x00" + b"\x01\x01" + b"123\x00" + b"\x00\x00\x08"
    body += struct.pack(">HH", 0x0424, 4) + b"\x00h\x00i"
    raw = pdu.build_pdu(pdu.DATA_SM, 9, body=body)
    parsed = pdu.parse_deliver_sm(raw)
    assert parsed.command == "data_sm"
    assert (parsed.source, parsed.destination, parsed.data_coding) == ("447700900000", "123", 8)
    assert parsed.payload == b"\x00h\x00i"


@given(cut=st.integers(17, 60))
def test_truncated_bodies_raise_pdu_error(cut: int) -> None:
    raw = smpplib_deliver_sm(
        source_addr="447700900000", destination_addr="123", short_message=b"hello", sar_msg_ref_num=1
    )
    without_tlv = len(raw) - 6  # cutting exactly before the 6-octet TLV leaves a valid PDU
    cut = min(cut, len(raw) - 1)
    if cut == without_tlv:
        cut -= 1
    truncated = raw[:cut]
    truncated = struct.pack(">I", len(truncated)) + truncated[4:]
    with pytest.raises(pdu.PduError):
        pdu.parse_deliver_sm(truncated)


@given(
    frames=st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=20),
    chunk=st.integers(1, 64),
)
def test_split_frames_reassembles_any_chunking(frames: list[bytes], chunk: int) -> None:
    stream = b"".join(pdu.build_pdu(pdu.ENQUIRE_LINK, i + 1, body=body) for i, body in enumerate(frames))
    buffer = bytearray()
    out: list[bytes] = []
    for start in range(0, len(stream), chunk):
        buffer += stream[start : start + chunk]
        out.extend(pdu.split_frames(buffer))
    assert not buffer
    assert [frame[16:] for frame in out] == frames
    assert [pdu.parse_header(frame).sequence for frame in out] == list(range(1, len(frames) + 1))


def test_split_frames_rejects_an_absurd_length() -> None:
    with pytest.raises(pdu.PduError):
        list(pdu.split_frames(bytearray(struct.pack(">I", 3) + b"\x00" * 12)))


def test_responses() -> None:
    header = pdu.Header(16, pdu.DELIVER_SM, 0, 42)
    assert pdu.response_for(header) == pdu.build_pdu(pdu.DELIVER_SM_RESP, 42, body=b"\x00")
    assert pdu.parse_header(pdu.response_for(pdu.Header(16, pdu.UNBIND, 0, 5))).command_id == pdu.UNBIND_RESP
    nack = pdu.parse_header(pdu.response_for(pdu.Header(16, 0x00000111, 0, 6)))
    assert (nack.command_id, nack.status, nack.sequence) == (pdu.GENERIC_NACK, pdu.ESME_RINVCMDID, 6)


def test_message_id_of_a_resp() -> None:
    assert pdu.parse_message_id(pdu.build_pdu(pdu.SUBMIT_SM_RESP, 1, body=b"abc123\x00")) == "abc123"
    assert pdu.parse_message_id(pdu.build_pdu(pdu.SUBMIT_SM_RESP, 1, status=0x58)) == ""


# submit_sm encoding: byte-for-byte what smpplib generates --------------------------------------

_INT_TLVS = {name: spec for name, spec in pdu.SUBMIT_SM_TLVS.items() if spec.kind == "int"}
_SMPPLIB_SIZE_BUG = {"source_addr_subunit"}  # smpplib packs it in 2 octets; SMPP 3.4 says 1


@st.composite
def submit_tlvs(draw: st.DrawFn) -> dict[str, int | bytes | str]:
    tlvs: dict[str, int | bytes | str] = {}
    for name in draw(st.sets(st.sampled_from(sorted(set(_INT_TLVS) - _SMPPLIB_SIZE_BUG)), max_size=6)):
        tlvs[name] = draw(st.integers(0, 256 ** _INT_TLVS[name].size - 1))
    if draw(st.booleans()):
        tlvs["callback_num"] = draw(st.binary(min_size=4, max_size=19))
    if draw(st.booleans()):
        tlvs["source_subaddress"] = draw(st.text(alphabet="0123456789", min_size=2, max_size=22))
    return tlvs


@given(
    source=addresses,
    destination=addresses,
    numbers=st.lists(st.integers(0, 255), min_size=9, max_size=9),
    short_message=st.binary(max_size=254),
    service_type=st.sampled_from(["", "CMT", "WAP"]),
    validity_period=st.sampled_from(["", "000001000000000R"]),
    tlvs=submit_tlvs(),
    payload=st.binary(max_size=600),
)
def test_submit_sm_encoding_matches_smpplib(  # the bind's encoder against smpplib's generate()
    source: str,
    destination: str,
    numbers: list[int],
    short_message: bytes,
    service_type: str,
    validity_period: str,
    tlvs: dict[str, int | bytes | str],
    payload: bytes,
) -> None:
    if not short_message and payload:
        tlvs = {**tlvs, "message_payload": payload}
    source_ton, source_npi, dest_ton, dest_npi, esm, protocol_id, priority, registered, coding = numbers
    mine = pdu.encode_submit_sm(
        service_type=service_type,
        source_ton=source_ton,
        source_npi=source_npi,
        source=source,
        dest_ton=dest_ton,
        dest_npi=dest_npi,
        destination=destination,
        esm_class=esm,
        protocol_id=protocol_id,
        priority_flag=priority,
        validity_period=validity_period,
        registered_delivery=registered,
        data_coding=coding,
        short_message=short_message,
        tlvs=tlvs,
    )
    theirs = smpplib.smpp.make_pdu(
        "submit_sm",
        client=_Seq(),
        service_type=service_type,
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        source_addr=source,
        dest_addr_ton=dest_ton,
        dest_addr_npi=dest_npi,
        destination_addr=destination,
        esm_class=esm,
        protocol_id=protocol_id,
        priority_flag=priority,
        validity_period=validity_period,
        registered_delivery=registered,
        data_coding=coding,
        short_message=short_message,
        **tlvs,
    ).generate()[16:]
    assert mine == theirs


def test_submit_sm_encoding_refuses_what_smpplib_would_mangle() -> None:
    with pytest.raises(ValueError, match="source_addr"):
        pdu.encode_submit_sm(source="1" * 21, destination="2", short_message=b"x")
    with pytest.raises(ValueError, match="cannot carry"):
        pdu.encode_submit_sm(source="1", destination="2", short_message=b"x", tlvs={"typo_ref_num": 1})
    with pytest.raises(ValueError, match="octet"):
        pdu.encode_submit_sm(
            source="1", destination="2", short_message=b"x", tlvs={"sar_total_segments": 256}
        )
    with pytest.raises(ValueError, match="254"):
        pdu.encode_submit_sm(source="1", destination="2", short_message=b"x" * 255)
    with pytest.raises(ValueError, match="exclusive"):
        pdu.encode_submit_sm(source="1", destination="2", short_message=b"x", tlvs={"message_payload": b"y"})
    subunit = pdu.encode_submit_sm(
        source="1", destination="2", short_message=b"", tlvs={"source_addr_subunit": 3}
    )
    assert subunit.endswith(bytes.fromhex("000d000103"))  # one octet, as SMPP 3.4 says
