"""SMPP ``data_coding`` values, choosing one for outbound text, and decoding inbound payloads.

SMPP 3.4 §5.2.19 defines ``data_coding``. Outbound, Trunkline only ever uses two values:

* ``0x00`` SMSC default alphabet. In practice (and as Trunkline's SMSC accounts are configured)
  this is the GSM 03.38 / TS 23.038 7-bit alphabet, sent unpacked, one septet per octet.
* ``0x08`` UCS-2 (ISO/IEC-10646). Sent as UTF-16BE, so characters outside the Basic
  Multilingual Plane (emoji) travel as surrogate pairs, which every current handset renders.

``0x01`` (IA5, i.e. ASCII) and ``0x03`` (ISO-8859-1) exist, but are not used outbound: whether
and how an SMSC converts them to the air interface is operator-specific (many map 0x01 to GSM
7-bit, some send 0x03 as 8-bit data that handsets show as garbage), so a message could arrive
altered; and neither covers anything GSM-7 plus UCS-2 do not. They are decoded inbound, since
SMSCs do deliver MO messages with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from sms.gsm7 import can_encode_gsm7, decode_gsm7, encode_gsm7


class DataCoding(IntEnum):
    """The SMPP 3.4 §5.2.19 ``data_coding`` values Trunkline understands."""

    SMSC_DEFAULT = 0x00
    """GSM 03.38 7-bit default alphabet, unpacked (one septet per octet)."""
    IA5 = 0x01
    """IA5 / ASCII (inbound only)."""
    OCTET_UNSPECIFIED = 0x02
    """8-bit binary; not text."""
    LATIN1 = 0x03
    """ISO-8859-1 (inbound only)."""
    OCTET_UNSPECIFIED_4 = 0x04
    """8-bit binary; not text."""
    UCS2 = 0x08
    """UCS-2, carried as UTF-16BE (surrogate pairs for characters beyond U+FFFF)."""


OUTBOUND_CODINGS: frozenset[DataCoding] = frozenset({DataCoding.SMSC_DEFAULT, DataCoding.UCS2})

_UTF16 = "utf-16-be"


def choose_data_coding(text: str) -> DataCoding:
    """GSM 7-bit (0x00) when every character encodes in it, else UCS-2 (0x08)."""
    return DataCoding.SMSC_DEFAULT if can_encode_gsm7(text) else DataCoding.UCS2


def encode_text(text: str, data_coding: DataCoding) -> bytes:
    """Encode text for ``short_message`` in one of the outbound codings.

    GSM 7-bit raises :class:`sms.gsm7.NotGsm7EncodableError` for a character outside it. UCS-2
    keeps lone surrogates (``surrogatepass``) rather than fail, so any Python string encodes.
    """
    if data_coding == DataCoding.SMSC_DEFAULT:
        return encode_gsm7(text)
    if data_coding == DataCoding.UCS2:
        return text.encode(_UTF16, "surrogatepass")
    raise ValueError(f"data_coding 0x{data_coding:02X} is not used for outbound text")


def utf16_unit_count(text: str) -> int:
    """UTF-16 code units of the text: 2 for each character beyond U+FFFF, else 1."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


@dataclass(frozen=True, slots=True)
class DecodedText:
    """An inbound payload turned into text.

    ``decoded`` is False when the coding was not a text coding Trunkline knows; ``text`` is then
    a visible marker naming the coding and carrying the octets in hex, and ``raw`` keeps them.
    """

    text: str
    data_coding: int
    raw: bytes
    decoded: bool


def text_alphabet(data_coding: int) -> DataCoding | None:
    """The text alphabet a ``data_coding`` octet denotes, or None for binary / unknown.

    Besides the SMPP values, SMSCs pass through GSM TS 23.038 §4 data coding schemes with a
    message class: general data coding 0x10..0x1F (bits 3..2 = alphabet, uncompressed) and the
    data coding / message class group 0xF0..0xFF (bit 2: 0 = 7-bit default, 1 = 8-bit data).
    """
    if data_coding in (DataCoding.SMSC_DEFAULT, DataCoding.IA5, DataCoding.LATIN1, DataCoding.UCS2):
        return DataCoding(data_coding)
    if 0x10 <= data_coding <= 0x1F:
        alphabet = (data_coding >> 2) & 0x03
        if alphabet == 0:
            return DataCoding.SMSC_DEFAULT
        if alphabet == 2:
            return DataCoding.UCS2
        return None
    if 0xF0 <= data_coding <= 0xFF and not data_coding & 0x04:
        return DataCoding.SMSC_DEFAULT
    return None


def undecoded_marker(payload: bytes, data_coding: int) -> str:
    """The text shown for a payload in a coding that is not known text."""
    return f"[undecoded data_coding=0x{data_coding:02X} {len(payload)} octets: {payload.hex()}]"


def decode_payload(
    payload: bytes, data_coding: int, *, smsc_default: DataCoding = DataCoding.SMSC_DEFAULT
) -> DecodedText:
    """Decode a ``short_message`` / ``message_payload`` (without its UDH) by ``data_coding``.

    0x00 GSM 7-bit unpacked; 0x01 IA5/ASCII; 0x03 Latin-1; 0x08 UCS-2 (UTF-16BE, an odd
    trailing octet or lone surrogate becomes U+FFFD). Anything else is kept as octets behind a
    marker (see :class:`DecodedText`).

    ``smsc_default`` is what this SMSC means by 0x00: the "SMSC default alphabet" is the SMSC's
    choice (SMPP 3.4 §5.2.19), and some deliver ASCII or Latin-1 under it. It applies to 0x00
    only; the TS 23.038 schemes that name GSM 7-bit explicitly (0x10.., 0xF0..) stay GSM.
    """
    alphabet = text_alphabet(data_coding)
    if data_coding == DataCoding.SMSC_DEFAULT:
        if smsc_default not in (DataCoding.SMSC_DEFAULT, DataCoding.IA5, DataCoding.LATIN1):
            raise ValueError(f"an SMSC default alphabet cannot be data_coding 0x{smsc_default:02X}")
        alphabet = smsc_default
    if alphabet == DataCoding.SMSC_DEFAULT:
        text = decode_gsm7(payload)
    elif alphabet == DataCoding.IA5:
        text = payload.decode("ascii", "replace")
    elif alphabet == DataCoding.LATIN1:
        text = payload.decode("latin-1")
    elif alphabet == DataCoding.UCS2:
        text = payload.decode(_UTF16, "replace")
    else:
        return DecodedText(undecoded_marker(payload, data_coding), data_coding, payload, decoded=False)
    return DecodedText(text, data_coding, payload, decoded=True)
