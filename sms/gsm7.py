"""The GSM 7-bit default alphabet and its basic extension table (3GPP TS 23.038 §6.2.1, §6.2.1.1).

Two representations of the same septets exist:

* **unpacked**: one septet per octet (high bit clear). This is what SMPP carries in
  ``short_message`` when ``data_coding`` is 0x00 on almost every SMSC; the SMSC packs it for the
  air interface itself.
* **packed**: septets laid end to end, least significant bit first (TS 23.038 §6.1.2.1.1), as
  they travel in TP-User-Data. When a User Data Header precedes the text, the text starts on a
  septet boundary counted from the start of the user data, so ``fill_bits`` of padding sit between
  the header and the first septet (TS 23.040 §9.2.3.24).

A character of the extension table costs two septets: ESC (0x1B) followed by its code. Nothing
here transliterates: a character that is in neither table is simply not GSM-encodable.
"""

from __future__ import annotations

ESCAPE = 0x1B
"""Escape to the extension table (TS 23.038 §6.2.1.1); never a character of its own."""

SEPTET_MASK = 0x7F

# TS 23.038 §6.2.1, the default alphabet by code 0x00..0x7F. Code 0x1B is the escape, kept as a
# placeholder that no text character maps to (see _CHAR_TO_SEPTET below).
DEFAULT_ALPHABET: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 §6.2.1.1, the basic extension table: code after ESC -> character. 0x0A is the page
# break, rendered here as FORM FEED. 0x0D (CR2) and 0x1B (another extension table) are not
# characters and are absent on purpose.
EXTENSION_TABLE: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_CHAR_TO_SEPTET: dict[str, int] = {char: code for code, char in enumerate(DEFAULT_ALPHABET) if code != ESCAPE}
_CHAR_TO_EXTENSION: dict[str, int] = {char: code for code, char in EXTENSION_TABLE.items()}

EXTENSION_CHARACTERS: frozenset[str] = frozenset(_CHAR_TO_EXTENSION)
_ENCODE_TRANSLATION: dict[int, str] = {
    **{ord(char): chr(code) for char, code in _CHAR_TO_SEPTET.items()},
    **{ord(char): chr(ESCAPE) + chr(code) for char, code in _CHAR_TO_EXTENSION.items()},
}
DEFAULT_CHARACTERS: frozenset[str] = frozenset(_CHAR_TO_SEPTET)
GSM7_CHARACTERS: frozenset[str] = DEFAULT_CHARACTERS | EXTENSION_CHARACTERS

REPLACEMENT_CHARACTER = "\ufffd"


class NotGsm7EncodableError(ValueError):
    """The text holds a character that neither GSM 7-bit table has."""

    def __init__(self, character: str, position: int) -> None:
        super().__init__(f"U+{ord(character):04X} at position {position} is not in the GSM 7-bit alphabet")
        self.character = character
        self.position = position


def can_encode_gsm7(text: str) -> bool:
    """True when every character is in the default alphabet or the basic extension table."""
    return GSM7_CHARACTERS.issuperset(text)


def gsm7_char_septets(char: str) -> int:
    """Septets one character costs: 1 in the default alphabet, 2 (ESC + code) in the extension table."""
    if char in _CHAR_TO_SEPTET:
        return 1
    if char in _CHAR_TO_EXTENSION:
        return 2
    raise NotGsm7EncodableError(char, 0)


def gsm7_septet_count(text: str) -> int:
    """Septets the text needs, counting each extension character as two."""
    if not GSM7_CHARACTERS.issuperset(text):
        position, char = next((i, c) for i, c in enumerate(text) if c not in GSM7_CHARACTERS)
        raise NotGsm7EncodableError(char, position)
    return len(text) + gsm7_extension_count(text)


def encode_gsm7(text: str) -> bytes:
    """Encode to unpacked septets (one per octet), as SMPP ``short_message`` carries data_coding 0x00.

    Raises NotGsm7EncodableError naming the first character outside both tables.
    """
    if not GSM7_CHARACTERS.issuperset(text):
        position, char = next((i, c) for i, c in enumerate(text) if c not in GSM7_CHARACTERS)
        raise NotGsm7EncodableError(char, position)
    # str.translate and a Latin-1 encode run in C: every septet (and ESC) is below 0x80.
    return text.translate(_ENCODE_TRANSLATION).encode("latin-1")


def gsm7_extension_count(text: str) -> int:
    """How many characters of the text come from the extension table (each costs an extra septet)."""
    return sum(text.count(char) for char in EXTENSION_CHARACTERS)


def decode_gsm7(septets: bytes) -> str:
    """Decode unpacked septets (one per octet) to text.

    Tolerant, as TS 23.038 §6.2.1.1 asks of a receiver: ESC followed by a code the extension
    table lacks shows the default-alphabet character of that code; a trailing lone ESC is
    dropped. Octets with the high bit set are not septets and become U+FFFD.
    """
    chars: list[str] = []
    index = 0
    length = len(septets)
    while index < length:
        code = septets[index]
        index += 1
        if code > SEPTET_MASK:
            chars.append(REPLACEMENT_CHARACTER)
            continue
        if code != ESCAPE:
            chars.append(DEFAULT_ALPHABET[code])
            continue
        if index >= length:
            break
        extension = septets[index]
        index += 1
        if extension > SEPTET_MASK:
            chars.append(REPLACEMENT_CHARACTER)
        elif extension in EXTENSION_TABLE:
            chars.append(EXTENSION_TABLE[extension])
        elif extension == ESCAPE:
            # ESC ESC escapes to a further extension table this receiver does not know;
            # TS 23.038 reserves it, and a space is the conventional rendering.
            chars.append(" ")
        else:
            chars.append(DEFAULT_ALPHABET[extension])
    return "".join(chars)


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack unpacked septets into octets, LSB first (TS 23.038 §6.1.2.1.1).

    ``fill_bits`` (0..6) zero bits precede the first septet, which is how text is aligned after
    a User Data Header (TS 23.040 §9.2.3.24). When the septets end with 7 spare bits in the last
    octet the receiver cannot tell them from a trailing '@'; that is why TP-UDL carries the
    septet count, and why :func:`unpack_septets` takes one.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    accumulator = 0
    for index, septet in enumerate(septets):
        if septet > SEPTET_MASK:
            raise ValueError(f"octet 0x{septet:02X} at {index} is not a septet")
        accumulator |= septet << (fill_bits + 7 * index)
    total_bits = fill_bits + 7 * len(septets)
    return accumulator.to_bytes((total_bits + 7) // 8, "little")


def unpack_septets(packed: bytes, septet_count: int | None = None, fill_bits: int = 0) -> bytes:
    """Unpack LSB-first packed septets to one per octet.

    Without ``septet_count`` every whole septet in the octets is returned, so a message of
    8n-1 septets gains a trailing 0x00 ('@'); pass the count from TP-UDL to avoid it.
    """
    if not 0 <= fill_bits <= 6:
        raise ValueError(f"fill_bits must be 0..6, not {fill_bits}")
    available = (len(packed) * 8 - fill_bits) // 7 if packed else 0
    if septet_count is None:
        septet_count = available
    elif septet_count > available:
        raise ValueError(f"{len(packed)} octets hold {available} septets, not {septet_count}")
    accumulator = int.from_bytes(packed, "little") >> fill_bits
    return bytes((accumulator >> (7 * index)) & SEPTET_MASK for index in range(septet_count))
