"""User Data Header: building and reading the concatenation information elements.

3GPP TS 23.040 §9.2.3.24: the UDH is one length octet (UDHL) followed by information elements,
each ``IEI, IEDL, data``. Concatenation uses IEI 0x00 (8-bit reference, §9.2.3.24.1) or IEI 0x08
(16-bit reference, §9.2.3.24.8), with data ``reference, total parts, this part's number``, parts
numbered from 1. In SMPP the header sits at the start of ``short_message`` and ``esm_class``
carries UDHI (0x40, SMPP 3.4 §5.2.12).
"""

from __future__ import annotations

from dataclasses import dataclass

ESM_CLASS_UDHI = 0x40
"""SMPP 3.4 §5.2.12 esm_class bit 6: short_message begins with a UDH."""

IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08

CONCAT_UDH_8BIT_LENGTH = 6
"""UDHL + IEI + IEDL + reference + total + sequence."""
CONCAT_UDH_16BIT_LENGTH = 7
"""UDHL + IEI + IEDL + 2-octet reference + total + sequence."""

MAX_PARTS = 255
"""Total and sequence are single octets."""


class MalformedUdhError(ValueError):
    """The octets flagged as a UDH do not parse as one."""


@dataclass(frozen=True, slots=True)
class InformationElement:
    identifier: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ConcatInfo:
    """Where one part sits in a concatenated message."""

    reference: int
    total: int
    sequence: int
    reference_bits: int
    """8 or 16 for UDH; 16 for SMPP SAR TLVs (sar_msg_ref_num is two octets)."""


def build_concat_udh(
    reference: int, total: int, sequence: int, *, sixteen_bit_reference: bool = False
) -> bytes:
    """The whole UDH (UDHL included) for one part of a concatenated message."""
    if not 1 <= total <= MAX_PARTS:
        raise ValueError(f"total parts must be 1..{MAX_PARTS}, not {total}")
    if not 1 <= sequence <= total:
        raise ValueError(f"part number must be 1..{total}, not {sequence}")
    if sixteen_bit_reference:
        if not 0 <= reference <= 0xFFFF:
            raise ValueError(f"a 16-bit reference must be 0..65535, not {reference}")
        return bytes([6, IEI_CONCAT_16BIT, 4, reference >> 8, reference & 0xFF, total, sequence])
    if not 0 <= reference <= 0xFF:
        raise ValueError(f"an 8-bit reference must be 0..255, not {reference}")
    return bytes([5, IEI_CONCAT_8BIT, 3, reference, total, sequence])


def split_udh(short_message: bytes) -> tuple[bytes, bytes]:
    """Split ``short_message`` whose esm_class has UDHI into (UDH with its length octet, payload)."""
    if not short_message:
        raise MalformedUdhError("UDHI is set but short_message is empty")
    header_length = short_message[0]
    end = 1 + header_length
    if end > len(short_message):
        raise MalformedUdhError(
            f"UDHL {header_length} exceeds the {len(short_message) - 1} octets that follow"
        )
    return short_message[:end], short_message[end:]


def parse_information_elements(udh: bytes) -> list[InformationElement]:
    """The information elements of a UDH given with its length octet."""
    if not udh or udh[0] != len(udh) - 1:
        raise MalformedUdhError("UDH length octet does not match the header")
    elements: list[InformationElement] = []
    index = 1
    while index < len(udh):
        if index + 2 > len(udh):
            raise MalformedUdhError(f"truncated information element at offset {index}")
        identifier, data_length = udh[index], udh[index + 1]
        start = index + 2
        end = start + data_length
        if end > len(udh):
            raise MalformedUdhError(f"IEI 0x{identifier:02X} claims {data_length} octets past the header")
        elements.append(InformationElement(identifier, udh[start:end]))
        index = end
    return elements


def concat_info_from_udh(udh: bytes) -> ConcatInfo | None:
    """The concatenation element of a UDH, or None when it has none (or an invalid one).

    TS 23.040 §9.2.3.24.1 tells the receiver to ignore the whole element when total or
    sequence is 0 or the sequence exceeds the total; the part is then a message on its own.
    When both concatenation elements appear, the last one wins, as for repeated elements.
    """
    found: ConcatInfo | None = None
    for element in parse_information_elements(udh):
        if element.identifier == IEI_CONCAT_8BIT and len(element.data) == 3:
            reference, total, sequence = element.data
            candidate = ConcatInfo(reference, total, sequence, reference_bits=8)
        elif element.identifier == IEI_CONCAT_16BIT and len(element.data) == 4:
            reference = int.from_bytes(element.data[:2], "big")
            candidate = ConcatInfo(reference, element.data[2], element.data[3], reference_bits=16)
        else:
            continue
        found = candidate if is_valid_concat(candidate) else None
    return found


def is_valid_concat(info: ConcatInfo) -> bool:
    return 1 <= info.total <= MAX_PARTS and 1 <= info.sequence <= info.total


def udh_fill_bits(udh_length: int) -> int:
    """Fill bits between a UDH of ``udh_length`` octets (UDHL included) and packed 7-bit text.

    TS 23.040 §9.2.3.24: the text starts on a septet boundary counted from the start of the user
    data, so a 6-octet header (48 bits) is followed by 1 fill bit, a 7-octet one (56) by none.
    """
    return (7 - (udh_length * 8) % 7) % 7
