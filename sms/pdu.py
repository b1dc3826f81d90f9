"""Pure SMPP 3.4 framing and the few PDU bodies the bind reads itself.

The bind encodes submit_sm here rather than with smpplib's ``make_pdu(...).generate()``, which
costs about 80 µs per PDU (it sets some 40 attributes and walks every optional field by name);
the output is byte-for-byte smpplib's (a property test holds it to that), and the TLV table is
read from smpplib's own submit_sm definition. smpplib's parser is not used for what arrives from
the SMSC either: it raises ``UnknownCommandError`` on a vendor TLV (unless told to skip, and then drops it),
raises ``KeyError`` on a standard TLV that the command's own table does not list, and resolves
command ids by scanning a dict on every PDU. These functions keep every TLV (unknown ones under
their tag) and raise only :class:`PduError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

import smpplib.command
import smpplib.ptypes
from smpplib import consts as smpp_consts

HEADER: Final = struct.Struct(">IIII")
HEADER_SIZE: Final = 16
MAX_PDU_SIZE: Final = 64 * 1024

GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_TRANSMITTER: Final = 0x00000002
SUBMIT_SM: Final = 0x00000004
SUBMIT_SM_RESP: Final = 0x80000004
DELIVER_SM: Final = 0x00000005
DELIVER_SM_RESP: Final = 0x80000005
UNBIND: Final = 0x00000006
UNBIND_RESP: Final = 0x80000006
BIND_TRANSCEIVER: Final = 0x00000009
ENQUIRE_LINK: Final = 0x00000015
ENQUIRE_LINK_RESP: Final = 0x80000015
ALERT_NOTIFICATION: Final = 0x00000102
DATA_SM: Final = 0x00000103
DATA_SM_RESP: Final = 0x80000103
RESPONSE_BIT: Final = 0x80000000

ESME_ROK: Final = 0x00
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RMSGQFUL: Final = 0x14
ESME_RTHROTTLED: Final = 0x58
ESME_RX_T_APPN: Final = 0x64  # ESME receiver temporary app error: the SMSC should resend
ESME_RX_P_APPN: Final = 0x65  # ESME receiver permanent app error: do not resend
ESME_RINVBNDSTS: Final = 0x04
ESME_RSYSERR: Final = 0x08
ESME_RSERTYPUNAVAIL: Final = 0x102
# TLVs the bind names; everything else is kept under its tag as "0x%04x".
# kind: "int" (big-endian unsigned, any length), "cstring" (NUL-terminated ASCII), "bytes".
TLV_TAGS: Final[Mapping[int, tuple[str, str]]] = {
    0x0005: ("dest_addr_subunit", "int"),
    0x000D: ("source_addr_subunit", "int"),
    0x0019: ("payload_type", "int"),
    0x001D: ("additional_status_info_text", "cstring"),
    0x001E: ("receipted_message_id", "cstring"),
    0x0204: ("user_message_reference", "int"),
    0x020A: ("source_port", "int"),
    0x020B: ("destination_port", "int"),
    0x020C: ("sar_msg_ref_num", "int"),
    0x020E: ("sar_total_segments", "int"),
    0x020F: ("sar_segment_seqnum", "int"),
    0x0423: ("network_error_code", "bytes"),
    0x0424: ("message_payload", "bytes"),
    0x0426: ("more_messages_to_send", "int"),
    0x0427: ("message_state", "int"),
    0x0201: ("privacy_indicator", "int"),
    0x0202: ("source_subaddress", "bytes"),
    0x0203: ("dest_subaddress", "bytes"),
    0x0381: ("callback_num", "bytes"),
    0x000E: ("source_network_type", "int"),
    0x0006: ("dest_network_type", "int"),
}

TlvValue = int | str | bytes


class PduError(ValueError):
    """A PDU (or its body) is malformed."""


@dataclass(frozen=True, slots=True)
class Header:
    length: int
    command_id: int
    status: int
    sequence: int

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)


def parse_header(data: bytes | bytearray | memoryview) -> Header:
    if len(data) < HEADER_SIZE:
        raise PduError(f"a PDU header is 16 octets, got {len(data)}")
    length, command_id, status, sequence = HEADER.unpack_from(data, 0)
    if length < HEADER_SIZE or length > MAX_PDU_SIZE:
        raise PduError(f"command_length {length} is out of range")
    return Header(length, command_id, status, sequence)


def split_frames(buffer: bytearray) -> Iterator[bytes]:
    """Yield every complete PDU at the start of ``buffer`` and remove it from the buffer."""
    offset = 0
    size = len(buffer)
    while size - offset >= 4:
        (length,) = struct.unpack_from(">I", buffer, offset)
        if length < HEADER_SIZE or length > MAX_PDU_SIZE:
            raise PduError(f"command_length {length} is out of range")
        if size - offset < length:
            break
        yield bytes(buffer[offset : offset + length])
        offset += length
    del buffer[:offset]


def build_pdu(command_id: int, sequence: int, status: int = ESME_ROK, body: bytes = b"") -> bytes:
    return HEADER.pack(HEADER_SIZE + len(body), command_id, status, sequence) + body


def response_for(header: Header, status: int = ESME_ROK) -> bytes:
    """The response to a request: generic_nack for an unknown command, else <command>_resp.

    deliver_sm_resp and data_sm_resp carry an empty message_id (one NUL octet); the others carry
    no body.
    """
    if header.command_id in (DELIVER_SM, DATA_SM):
        return build_pdu(header.command_id | RESPONSE_BIT, header.sequence, status, b"\x00")
    if header.command_id in (ENQUIRE_LINK, UNBIND):
        return build_pdu(header.command_id | RESPONSE_BIT, header.sequence, status)
    return build_pdu(GENERIC_NACK, header.sequence, status or ESME_RINVCMDID)


class _Reader:
    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.offset = offset

    def octet(self) -> int:
        if self.offset >= len(self.data):
            raise PduError("body ends inside a mandatory field")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def cstring(self) -> str:
        end = self.data.find(b"\x00", self.offset)
        if end < 0:
            raise PduError("C-octet string without its NUL terminator")
        value = self.data[self.offset : end].decode("latin-1")
        self.offset = end + 1
        return value

    def octets(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise PduError("body ends inside an octet string")
        value = self.data[self.offset : self.offset + count]
        self.offset += count
        return value


def parse_tlvs(data: bytes) -> dict[str, TlvValue]:
    """TLVs by name (see TLV_TAGS) or by tag ("0x1403") for ones the bind does not name."""
    tlvs: dict[str, TlvValue] = {}
    offset = 0
    while offset < len(data):
        if len(data) - offset < 4:
            raise PduError("truncated TLV header")
        tag, length = struct.unpack_from(">HH", data, offset)
        offset += 4
        if offset + length > len(data):
            raise PduError(f"TLV 0x{tag:04x} runs past the end of the PDU")
        raw = data[offset : offset + length]
        offset += length
        name, kind = TLV_TAGS.get(tag, (f"0x{tag:04x}", "bytes"))
        if kind == "int":
            tlvs[name] = int.from_bytes(raw, "big")
        elif kind == "cstring":
            tlvs[name] = raw.split(b"\x00", 1)[0].decode("latin-1")
        else:
            tlvs[name] = raw
    return tlvs


@dataclass(frozen=True, slots=True)
class DeliverSm:
    """A deliver_sm or data_sm from the SMSC: an MO message or a delivery receipt."""

    command: str  # "deliver_sm" or "data_sm"
    sequence: int
    source: str
    source_ton: int
    source_npi: int
    destination: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    short_message: bytes
    registered_delivery: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    service_type: str = ""
    tlvs: dict[str, TlvValue] = field(default_factory=dict)

    @property
    def is_receipt(self) -> bool:
        """esm_class message type: SMSC delivery receipt (0x04) or intermediate notification (0x20)."""
        return (self.esm_class & 0x3C) in (0x04, 0x20)

    @property
    def has_udh(self) -> bool:
        return bool(self.esm_class & 0x40)

    @property
    def receipted_message_id(self) -> str | None:
        value = self.tlvs.get("receipted_message_id")
        return value if isinstance(value, str) else None

    @property
    def message_state(self) -> int | None:
        value = self.tlvs.get("message_state")
        return value if isinstance(value, int) else None

    @property
    def payload(self) -> bytes:
        """short_message, or the message_payload TLV when short_message is empty."""
        value = self.tlvs.get("message_payload")
        if not self.short_message and isinstance(value, bytes):
            return value
        return self.short_message


def parse_deliver_sm(pdu: bytes) -> DeliverSm:
    """Parse a whole deliver_sm or data_sm PDU (header included)."""
    header = parse_header(pdu)
    if header.command_id not in (DELIVER_SM, DATA_SM):
        raise PduError(f"command 0x{header.command_id:08x} is neither deliver_sm nor data_sm")
    if header.length != len(pdu):
        raise PduError(f"command_length {header.length} but {len(pdu)} octets")
    reader = _Reader(pdu, HEADER_SIZE)
    service_type = reader.cstring()
    source_ton, source_npi, source = reader.octet(), reader.octet(), reader.cstring()
    dest_ton, dest_npi, destination = reader.octet(), reader.octet(), reader.cstring()
    esm_class = reader.octet()
    if header.command_id == DELIVER_SM:
        protocol_id, priority_flag = reader.octet(), reader.octet()
        reader.cstring()  # schedule_delivery_time
        reader.cstring()  # validity_period
        registered_delivery = reader.octet()
        reader.octet()  # replace_if_present_flag
        data_coding = reader.octet()
        reader.octet()  # sm_default_msg_id
        short_message = reader.octets(reader.octet())
        command = "deliver_sm"
    else:
        protocol_id = priority_flag = 0
        registered_delivery = reader.octet()
        data_coding = reader.octet()
        short_message = b""
        command = "data_sm"
    return DeliverSm(
        command=command,
        sequence=header.sequence,
        source=source,
        source_ton=source_ton,
        source_npi=source_npi,
        destination=destination,
        dest_ton=dest_ton,
        dest_npi=dest_npi,
        esm_class=esm_class,
        data_coding=data_coding,
        short_message=short_message,
        registered_delivery=registered_delivery,
        protocol_id=protocol_id,
        priority_flag=priority_flag,
        service_type=service_type,
        tlvs=parse_tlvs(pdu[reader.offset :]),
    )


def parse_message_id(pdu: bytes) -> str:
    """The message_id of a submit_sm_resp/data_sm_resp ('' when the body is empty)."""
    body = pdu[HEADER_SIZE:]
    if not body:
        return ""
    return body.split(b"\x00", 1)[0].decode("latin-1")


# submit_sm encoding ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlvSpec:
    tag: int
    kind: str  # "int" (fixed size), "octets", "cstring" (NUL-terminated)
    size: int  # octets of an int TLV; a cstring's longest value; unused for octets


# smpplib declares source_addr_subunit as 2 octets; SMPP 3.4 §5.3.2.2 makes it 1.
_SIZE_FIXES: Final = {"source_addr_subunit": 1}


def _submit_sm_tlvs() -> dict[str, TlvSpec]:
    """submit_sm's optional parameters in smpplib's order, with smpplib's tags and sizes."""
    order = smpplib.command.SubmitSM.params_order
    params = smpplib.command.SubmitSM.params
    specs: dict[str, TlvSpec] = {}
    for name in order[order.index("short_message") + 1 :]:
        param = params.get(name)
        if param is None or name not in smpp_consts.OPTIONAL_PARAMS:
            continue
        tag = smpp_consts.OPTIONAL_PARAMS[name]
        if param.type is int:
            specs[name] = TlvSpec(tag, "int", _SIZE_FIXES.get(name, param.size))
        elif param.type is smpplib.ptypes.ostr:
            specs[name] = TlvSpec(tag, "octets", getattr(param, "max", 0))
        elif param.type is str and not hasattr(param, "size"):  # smpplib cannot encode fixed-size ones
            specs[name] = TlvSpec(tag, "cstring", getattr(param, "max", 0))
    return specs


SUBMIT_SM_TLVS: Final = _submit_sm_tlvs()


def _cstring(value: str, limit: int, field_name: str) -> bytes:
    encoded = value.encode("latin-1")
    if len(encoded) >= limit:
        raise ValueError(f"{field_name} is at most {limit - 1} characters")
    return encoded + b"\x00"


def encode_submit_sm(
    *,
    source: str,
    destination: str,
    short_message: bytes,
    source_ton: int = 0,
    source_npi: int = 0,
    dest_ton: int = 0,
    dest_npi: int = 0,
    service_type: str = "",
    esm_class: int = 0,
    protocol_id: int = 0,
    priority_flag: int = 0,
    validity_period: str = "",
    registered_delivery: int = 0,
    data_coding: int = 0,
    tlvs: Mapping[str, TlvValue] | None = None,
) -> bytes:
    """The body of a submit_sm (everything after the 16-octet header).

    Raises ValueError where smpplib would silently truncate a field or drop a TLV.
    """
    if len(short_message) > 254:
        raise ValueError("short_message is at most 254 octets; use message_payload")
    parts = [
        _cstring(service_type, 6, "service_type"),
        bytes((source_ton, source_npi)),
        _cstring(source, 21, "source_addr"),
        bytes((dest_ton, dest_npi)),
        _cstring(destination, 21, "destination_addr"),
        bytes((esm_class, protocol_id, priority_flag)),
        b"\x00",  # schedule_delivery_time: immediate
        _cstring(validity_period, 17, "validity_period"),
        bytes((registered_delivery, 0, data_coding, 0, len(short_message))),
        short_message,
    ]
    if not tlvs:  # nearly every submit: skip walking the TLV table
        return b"".join(parts)
    given = dict(tlvs)
    unknown = set(given) - set(SUBMIT_SM_TLVS)
    if unknown:
        raise ValueError(f"TLVs submit_sm cannot carry here: {sorted(unknown)}")
    if short_message and given.get("message_payload"):
        raise ValueError("short_message and message_payload are mutually exclusive")
    for name, spec in SUBMIT_SM_TLVS.items():  # smpplib's order
        value = given.get(name)
        if value is None:
            continue
        if spec.kind == "int":
            if not isinstance(value, int) or not 0 <= value < 256**spec.size:
                raise ValueError(f"TLV {name} takes an integer of {spec.size} octet(s)")
            parts.append(struct.pack(">HH", spec.tag, spec.size) + value.to_bytes(spec.size, "big"))
            continue
        raw = value.encode("latin-1") if isinstance(value, str) else value
        if not isinstance(raw, bytes):
            raise ValueError(f"TLV {name} takes octets or text")
        if not raw:
            continue  # smpplib leaves an empty string or octet TLV out
        if spec.kind == "cstring":
            if len(raw) > spec.size:
                raise ValueError(f"TLV {name} is at most {spec.size} characters")
            raw += b"\x00"
        parts.append(struct.pack(">HH", spec.tag, len(raw)) + raw)
    return b"".join(parts)
