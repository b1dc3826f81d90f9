"""Splitting outbound text into SMPP ``submit_sm`` parts.

Limits (TS 23.040 §9.2.3.16: 140 octets of user data):

=================  ===========  ===========================  ===========================
coding             single part  UDH, 8-bit ref (6 octets)    UDH, 16-bit ref (7 octets)
=================  ===========  ===========================  ===========================
GSM 7-bit (0x00)   160 septets  153 septets (48 bits + 1     152 septets (56 bits = 8
                                fill bit = 7 septets)        septets)
UCS-2 (0x08)       70 units     67 UTF-16 units (134 octets) 66 UTF-16 units (132 octets)
=================  ===========  ===========================  ===========================

A part never ends between ESC and its extension code, nor between the two halves of a UTF-16
surrogate pair: the text is cut on character boundaries only, each character costing 1 or 2
septets (GSM) or 1 or 2 code units (UCS-2). smpplib's ``make_parts`` cuts encoded octets blindly
and so does both; this module exists so that nothing relies on it.

Instead of a UDH the concatenation can travel in SMPP's SAR TLVs (SMPP 3.4 §5.3.2.22-24:
``sar_msg_ref_num`` 16-bit, ``sar_total_segments``, ``sar_segment_seqnum``); the SMSC then builds
the UDH itself. Since it may choose the 16-bit reference element, SAR parts keep to the 16-bit
limits (152 / 66) so they fit whichever header the SMSC writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from sms.encoding import DataCoding, choose_data_coding, encode_text
from sms.gsm7 import (
    NotGsm7EncodableError,
    can_encode_gsm7,
    gsm7_char_septets,
    gsm7_septet_count,
    pack_septets,
)
from sms.udh import ESM_CLASS_UDHI, MAX_PARTS, build_concat_udh, udh_fill_bits

MAX_MESSAGE_CHARACTERS = 2048
"""The ACS SMS API's message length limit; 2,048 characters need at most 63 UCS-2 parts."""

SINGLE_PART_SEPTETS = 160
SINGLE_PART_UCS2_UNITS = 70


class ConcatenationMode(StrEnum):
    UDH_8BIT_REFERENCE = "udh8"
    UDH_16BIT_REFERENCE = "udh16"
    SAR_TLV = "sar"


_PART_LIMITS: dict[tuple[ConcatenationMode, DataCoding], int] = {
    (ConcatenationMode.UDH_8BIT_REFERENCE, DataCoding.SMSC_DEFAULT): 153,
    (ConcatenationMode.UDH_8BIT_REFERENCE, DataCoding.UCS2): 67,
    (ConcatenationMode.UDH_16BIT_REFERENCE, DataCoding.SMSC_DEFAULT): 152,
    (ConcatenationMode.UDH_16BIT_REFERENCE, DataCoding.UCS2): 66,
    (ConcatenationMode.SAR_TLV, DataCoding.SMSC_DEFAULT): 152,
    (ConcatenationMode.SAR_TLV, DataCoding.UCS2): 66,
}

_MAX_REFERENCE: dict[ConcatenationMode, int] = {
    ConcatenationMode.UDH_8BIT_REFERENCE: 0xFF,
    ConcatenationMode.UDH_16BIT_REFERENCE: 0xFFFF,
    ConcatenationMode.SAR_TLV: 0xFFFF,
}


class MessageTooLongError(ValueError):
    """The text needs more parts than a concatenated message can have (255)."""


@dataclass(frozen=True, slots=True)
class SarParameters:
    """Values for the SMPP SAR TLVs of one part."""

    msg_ref_num: int
    total_segments: int
    segment_seqnum: int


@dataclass(frozen=True, slots=True)
class Segment:
    """One ``submit_sm``'s worth of the message."""

    sequence: int
    """1-based part number."""
    total: int
    text: str
    """The characters this part carries."""
    short_message: bytes
    """What goes in ``short_message``: the UDH (if any) followed by ``payload``."""
    udh: bytes
    """The UDH with its length octet; empty for a single part or SAR mode."""
    payload: bytes
    """The encoded text alone."""
    length: int
    """Septets (GSM 7-bit) or UTF-16 code units (UCS-2) of ``payload``."""
    esm_class_flags: int
    """OR into esm_class: 0x40 (UDHI) when ``udh`` is present, else 0."""
    data_coding: DataCoding
    sar: SarParameters | None
    """SAR TLV values in SAR mode for a multi-part message, else None."""


@dataclass(frozen=True, slots=True)
class SegmentedMessage:
    segments: tuple[Segment, ...]
    data_coding: DataCoding
    mode: ConcatenationMode
    reference: int | None
    """The concatenation reference used, or None for a single part."""

    def __len__(self) -> int:
        return len(self.segments)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)


def part_limit(data_coding: DataCoding, mode: ConcatenationMode, *, single: bool) -> int:
    """Septets (GSM) or UTF-16 units (UCS-2) one part may carry."""
    if data_coding not in (DataCoding.SMSC_DEFAULT, DataCoding.UCS2):
        raise ValueError(f"data_coding 0x{data_coding:02X} is not used for outbound text")
    if single:
        return SINGLE_PART_SEPTETS if data_coding == DataCoding.SMSC_DEFAULT else SINGLE_PART_UCS2_UNITS
    return _PART_LIMITS[(mode, data_coding)]


def _is_high_surrogate(char: str) -> bool:
    return 0xD800 <= ord(char) <= 0xDBFF


def _is_low_surrogate(char: str) -> bool:
    return 0xDC00 <= ord(char) <= 0xDFFF


def _atoms(text: str, data_coding: DataCoding) -> list[tuple[str, int]]:
    """The text as indivisible (characters, cost) units.

    GSM: one character, costing 2 septets when it is an extension character. UCS-2: one
    character, costing 2 code units beyond U+FFFF; a surrogate pair that reached us as two
    code points (a str built from UTF-16 with surrogatepass) is kept as one unit too.
    """
    if data_coding == DataCoding.SMSC_DEFAULT:
        return [(char, gsm7_char_septets(char)) for char in text]
    atoms: list[tuple[str, int]] = []
    index = 0
    while index < len(text):
        char = text[index]
        if _is_high_surrogate(char) and index + 1 < len(text) and _is_low_surrogate(text[index + 1]):
            atoms.append((text[index : index + 2], 2))
            index += 2
            continue
        atoms.append((char, 2 if ord(char) > 0xFFFF else 1))
        index += 1
    return atoms


def _split(text: str, data_coding: DataCoding, mode: ConcatenationMode) -> list[tuple[str, int]]:
    """(part text, part length) for each part, filling every part greedily."""
    # Most messages are one part: size them with C-speed counting before walking characters.
    if data_coding == DataCoding.SMSC_DEFAULT:
        total_cost = gsm7_septet_count(text)
    else:
        total_cost = len(text.encode("utf-16-le", "surrogatepass")) // 2
    if total_cost <= part_limit(data_coding, mode, single=True):
        return [(text, total_cost)]
    atoms = _atoms(text, data_coding)
    limit = part_limit(data_coding, mode, single=False)
    parts: list[tuple[str, int]] = []
    current: list[str] = []
    current_cost = 0
    for chars, cost in atoms:
        if current_cost + cost > limit:
            parts.append(("".join(current), current_cost))
            current, current_cost = [], 0
        current.append(chars)
        current_cost += cost
    if current:
        parts.append(("".join(current), current_cost))
    return parts


def _resolve_coding(text: str, data_coding: DataCoding | None) -> DataCoding:
    if data_coding is None:
        return choose_data_coding(text)
    if data_coding == DataCoding.SMSC_DEFAULT and not can_encode_gsm7(text):
        bad = next(char for char in text if not can_encode_gsm7(char))
        raise NotGsm7EncodableError(bad, text.index(bad))
    if data_coding not in (DataCoding.SMSC_DEFAULT, DataCoding.UCS2):
        raise ValueError(f"data_coding 0x{data_coding:02X} is not used for outbound text")
    return data_coding


def segment_message(
    text: str,
    *,
    reference: int = 0,
    mode: ConcatenationMode = ConcatenationMode.UDH_8BIT_REFERENCE,
    data_coding: DataCoding | None = None,
) -> SegmentedMessage:
    """Split text into the parts to submit.

    ``data_coding`` None picks GSM 7-bit when every character encodes, else UCS-2; UCS-2 may be
    forced, GSM 7-bit only for text it can carry. ``reference`` (0..255 for the 8-bit UDH,
    0..65535 otherwise) must differ between concurrent multi-part messages to one recipient; it
    is unused for a single part. Raises MessageTooLongError past 255 parts.
    """
    coding = _resolve_coding(text, data_coding)
    if not 0 <= reference <= _MAX_REFERENCE[mode]:
        raise ValueError(f"reference {reference} does not fit mode {mode.value}")
    pieces = _split(text, coding, mode)
    total = len(pieces)
    if total > MAX_PARTS:
        raise MessageTooLongError(f"the text needs {total} parts; at most {MAX_PARTS} are possible")
    segments: list[Segment] = []
    for sequence, (piece, length) in enumerate(pieces, start=1):
        payload = encode_text(piece, coding)
        udh = b""
        sar: SarParameters | None = None
        if total > 1 and mode == ConcatenationMode.SAR_TLV:
            sar = SarParameters(reference, total, sequence)
        elif total > 1:
            udh = build_concat_udh(
                reference,
                total,
                sequence,
                sixteen_bit_reference=mode == ConcatenationMode.UDH_16BIT_REFERENCE,
            )
        segments.append(
            Segment(
                sequence=sequence,
                total=total,
                text=piece,
                short_message=udh + payload,
                udh=udh,
                payload=payload,
                length=length,
                esm_class_flags=ESM_CLASS_UDHI if udh else 0,
                data_coding=coding,
                sar=sar,
            )
        )
    return SegmentedMessage(tuple(segments), coding, mode, reference if total > 1 else None)


def segment_count(
    text: str,
    *,
    mode: ConcatenationMode = ConcatenationMode.UDH_8BIT_REFERENCE,
    data_coding: DataCoding | None = None,
) -> int:
    """How many parts :func:`segment_message` makes of the text (without encoding it)."""
    return len(_split(text, _resolve_coding(text, data_coding), mode))


def packed_user_data(segment: Segment) -> bytes:
    """The part as TP-User-Data with GSM 7-bit text packed, for SMSCs configured to expect that.

    Most SMSCs take unpacked septets in ``short_message`` (``Segment.short_message``); a few
    want the air-interface form: the UDH, then the septets packed from the next septet boundary
    (TS 23.040 §9.2.3.24, see :func:`sms.udh.udh_fill_bits`). UCS-2 parts are unchanged.
    """
    if segment.data_coding != DataCoding.SMSC_DEFAULT:
        return segment.short_message
    return segment.udh + pack_septets(segment.payload, udh_fill_bits(len(segment.udh)))


class ReferenceAllocator:
    """Hands out concatenation references, cycling per recipient.

    Two multi-part messages in flight to the same handset must not share a reference, or the
    handset merges their parts. Counting per recipient makes a clash need 256 (8-bit) or 65,536
    (16-bit, SAR) multi-part messages to one number within a reassembly timeout. Pure state: the
    caller supplies the starting point (e.g. random per process), and persistence if it wants
    references to survive a restart. Recipients are forgotten least-recently-used first past
    ``max_recipients`` so memory stays bounded.
    """

    def __init__(self, mode: ConcatenationMode, *, start: int = 0, max_recipients: int = 100_000) -> None:
        self._modulus = _MAX_REFERENCE[mode] + 1
        self._start = start % self._modulus
        self._max_recipients = max_recipients
        self._next: dict[str, int] = {}

    def allocate(self, recipient: str) -> int:
        reference = self._next.pop(recipient, self._start)
        self._next[recipient] = (reference + 1) % self._modulus
        while len(self._next) > self._max_recipients:
            del self._next[next(iter(self._next))]
        return reference
