"""For the record: why Trunkline does not use smpplib's make_parts or its GSM table.

These tests pin smpplib's behaviour; if one starts failing, smpplib changed and the note in
sms/segmentation.py should be revisited.
"""

from __future__ import annotations

import smpplib.consts
import smpplib.gsm

from sms.gsm7 import decode_gsm7
from sms.segmentation import segment_message


def test_make_parts_splits_an_escape_pair() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts, encoding, esm_class = smpplib.gsm.make_parts(text)
    assert encoding == smpplib.consts.SMPP_ENCODING_DEFAULT
    assert esm_class == smpplib.consts.SMPP_GSMFEAT_UDHI
    first_payload = parts[0][6:]
    assert first_payload.endswith(b"\x1b")  # ESC at the end of part 1, its 0x65 in part 2
    assert parts[1][6:].startswith(b"\x65")
    # Ours moves the pair whole.
    assert not segment_message(text).segments[0].payload.endswith(b"\x1b")


def test_make_parts_splits_a_surrogate_pair() -> None:
    text = "a" * 66 + "😀" + "b" * 10
    parts, encoding, _ = smpplib.gsm.make_parts(text)
    assert encoding == smpplib.consts.SMPP_ENCODING_ISO10646
    assert parts[0][6:].endswith(bytes.fromhex("d83d"))  # a high surrogate ends part 1
    assert parts[1][6:].startswith(bytes.fromhex("de00"))
    assert segment_message(text).segments[1].text.startswith("😀")


def test_smpplib_gsm_table_sends_a_backtick_as_the_section_sign() -> None:
    # Its table has "`" where TS 23.038 has "§" (0x5F), so "`" silently becomes "§" and "§"
    # itself cannot be encoded.
    assert smpplib.gsm.gsm_encode("`") == b"\x5f"
    assert decode_gsm7(b"\x5f") == "§"
    try:
        smpplib.gsm.gsm_encode("§")
    except UnicodeError:
        pass
    else:
        raise AssertionError("smpplib learnt to encode §")
