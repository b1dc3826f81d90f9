from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.receipts import (
    FINAL_STATES,
    STAT_TEXT,
    MessageIdFormat,
    MessageState,
    NetworkErrorCode,
    canonical_message_id,
    format_receipt_text,
    is_delivery_receipt,
    message_id_candidates,
    message_state_from_stat,
    parse_delivery_receipt,
    parse_network_error_code,
    parse_receipt_date,
    parse_receipt_text,
)

APPENDIX_B = (
    "id:1234567890 sub:001 dlvrd:001 submit date:2311291230 done date:2311291231 "
    "stat:DELIVRD err:000 text:Hello world"
)


def test_appendix_b_example() -> None:
    receipt = parse_receipt_text(APPENDIX_B)
    assert receipt is not None
    assert receipt.message_id == "1234567890"
    assert receipt.submitted == 1
    assert receipt.delivered == 1
    assert receipt.submit_date == datetime(2023, 11, 29, 12, 30)
    assert receipt.done_date == datetime(2023, 11, 29, 12, 31)
    assert receipt.stat == "DELIVRD"
    assert receipt.state == MessageState.DELIVERED
    assert receipt.error == "000"
    assert receipt.text == "Hello world"
    assert receipt.extra == {}


@pytest.mark.parametrize(
    ("body", "message_id", "state", "error"),
    [
        # Upper-case field names, seconds in the dates, hex id (a Kannel-fronted SMSC).
        (
            "ID:7F3A2B1C SUB:001 DLVRD:000 SUBMIT DATE:231129123015 DONE DATE:231129123520 "
            "STAT:UNDELIV ERR:001 TEXT:",
            "7F3A2B1C",
            MessageState.UNDELIVERABLE,
            "001",
        ),
        # Underscored date names and an extra operator field before text.
        (
            "id:c3a5e1b2-77f0-4d2c sub:001 dlvrd:001 submit_date:2311291230 done_date:2311291231 "
            "stat:DELIVRD err:0 mccmnc:310260 text:Your code is 1234",
            "c3a5e1b2-77f0-4d2c",
            MessageState.DELIVERED,
            "0",
        ),
        # Only the essentials.
        ("id:42 stat:EXPIRED", "42", MessageState.EXPIRED, None),
        # No id, lower-case stat, extra spaces.
        ("sub:1  dlvrd:0   stat: rejectd   err:  099", None, MessageState.REJECTED, "099"),
        # Long stat names some SMSCs write.
        ("id:abc stat:DELIVERED err:000", "abc", MessageState.DELIVERED, "000"),
        ("id:abc stat:UNDELIVERABLE err:000", "abc", MessageState.UNDELIVERABLE, "000"),
        ("id:abc stat:ACCEPTD err:000", "abc", MessageState.ACCEPTED, "000"),
    ],
)
def test_real_world_shapes(body: str, message_id: str | None, state: MessageState, error: str | None) -> None:
    receipt = parse_receipt_text(body)
    assert receipt is not None
    assert receipt.message_id == message_id
    assert receipt.state == state
    assert receipt.error == error


def test_extra_fields_are_kept() -> None:
    receipt = parse_receipt_text("id:1 stat:DELIVRD err:000 mccmnc:310260 Network:TMO text:x")
    assert receipt is not None
    assert receipt.extra == {"mccmnc": "310260", "network": "TMO"}


def test_text_takes_the_rest_even_when_it_looks_like_fields() -> None:
    receipt = parse_receipt_text("id:9 stat:DELIVRD err:000 text:stat:UNDELIV id:8 done")
    assert receipt is not None
    assert receipt.message_id == "9"
    assert receipt.state == MessageState.DELIVERED
    assert receipt.text == "stat:UNDELIV id:8 done"


def test_bytes_with_a_trailing_nul() -> None:
    receipt = parse_receipt_text(APPENDIX_B.encode("ascii") + b"\x00")
    assert receipt is not None
    assert receipt.text == "Hello world"


@pytest.mark.parametrize("body", ["hello there", "", "STOP", "text:id:1 stat:DELIVRD"])
def test_text_that_is_not_a_receipt(body: str) -> None:
    assert parse_receipt_text(body) is None


def test_unknown_stat_and_unparseable_numbers_are_none() -> None:
    receipt = parse_receipt_text("id:1 sub:x dlvrd: stat:WEIRD submit date:9999999999 done date:12")
    assert receipt is not None
    assert receipt.stat == "WEIRD"
    assert receipt.state is None
    assert receipt.submitted is None
    assert receipt.delivered is None
    assert receipt.submit_date is None
    assert receipt.done_date is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2311291230", datetime(2023, 11, 29, 12, 30)),
        ("231129123045", datetime(2023, 11, 29, 12, 30, 45)),
        ("20231129123045", datetime(2023, 11, 29, 12, 30, 45)),
        ("2313291230", None),
        ("", None),
        ("abc", None),
    ],
)
def test_receipt_dates(value: str, expected: datetime | None) -> None:
    assert parse_receipt_date(value) == expected


def strptime_receipt_date(value: str) -> datetime | None:
    """The parser as it was (strptime on the value's digits): the reference the slicing one
    must agree with."""
    digits = "".join(re.findall(r"\d+", value))
    try:
        if len(digits) == 10:
            return datetime.strptime("20" + digits, "%Y%m%d%H%M")
        if len(digits) == 12:
            return datetime.strptime("20" + digits, "%Y%m%d%H%M%S")
        if len(digits) == 14:
            return datetime.strptime(digits, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    return None


ascii_digits = st.text(alphabet="0123456789", max_size=16)
# Near-valid dates: each field drawn around its range's edges (month 00/13, day 29-32, hour 24,
# second 60), in the three lengths.
near_date = st.builds(
    lambda year, month, day, hour, minute, second, form: form.format(year, month, day, hour, minute, second),
    st.integers(0, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 61),
    st.sampled_from(
        [
            "{0:02d}{1:02d}{2:02d}{3:02d}{4:02d}",
            "{0:02d}{1:02d}{2:02d}{3:02d}{4:02d}{5:02d}",
            "{0:04d}{1:02d}{2:02d}{3:02d}{4:02d}{5:02d}",
        ]
    ),
).map(lambda text: text[-14:] if len(text) > 14 else text)
# Digits of any script among separators, as a str may carry them.
mixed = st.text(alphabet=st.one_of(st.characters(categories=["Nd"]), st.sampled_from(" -:/T")), max_size=18)


@given(st.one_of(ascii_digits, near_date, mixed))
def test_receipt_dates_agree_with_strptime(value: str) -> None:
    assert parse_receipt_date(value) == strptime_receipt_date(value)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)))
def test_receipt_dates_round_trip(when: datetime) -> None:
    when = when.replace(microsecond=0)
    assert parse_receipt_date(when.strftime("%y%m%d%H%M%S")) == when
    assert parse_receipt_date(when.strftime("%Y%m%d%H%M%S")) == when
    assert parse_receipt_date(when.strftime("%y%m%d%H%M")) == when.replace(second=0)


def test_tlvs_take_precedence_over_the_text() -> None:
    receipt = parse_delivery_receipt(
        APPENDIX_B.encode(),
        receipted_message_id=b"49A2C3\x00",
        message_state=5,
        network_error_code=bytes([3, 0x00, 0x22]),
    )
    assert receipt is not None
    assert receipt.message_id == "49A2C3"
    assert receipt.state == MessageState.UNDELIVERABLE
    assert receipt.network_error == NetworkErrorCode(3, 0x22)
    assert receipt.error == "000"
    assert receipt.submit_date == datetime(2023, 11, 29, 12, 30)
    assert receipt.is_final


def test_tlvs_alone_make_a_receipt() -> None:
    receipt = parse_delivery_receipt(b"", receipted_message_id="abc", message_state=b"\x01")
    assert receipt is not None
    assert receipt.message_id == "abc"
    assert receipt.state == MessageState.ENROUTE
    assert not receipt.is_final
    assert receipt.text is None


def test_out_of_range_message_state_falls_back_to_the_text() -> None:
    receipt = parse_delivery_receipt(APPENDIX_B, message_state=42)
    assert receipt is not None
    assert receipt.state == MessageState.DELIVERED


def test_nothing_receipt_like_is_none() -> None:
    assert parse_delivery_receipt(b"just a message") is None


def test_network_error_code() -> None:
    assert parse_network_error_code(b"\x03\x00\x01") == NetworkErrorCode(3, 1)
    assert parse_network_error_code(b"\x03\x01") is None
    assert NetworkErrorCode(3, 1).describe() == "GSM error 1"
    assert NetworkErrorCode(42, 1).describe() == "network type 42 error 1"


@pytest.mark.parametrize(("esm_class", "expected"), [(0x04, True), (0x20, True), (0x44, True), (0x00, False)])
def test_is_delivery_receipt(esm_class: int, expected: bool) -> None:
    assert is_delivery_receipt(esm_class) is expected


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", MessageState.DELIVERED),
        ("EXPIRED", MessageState.EXPIRED),
        ("DELETED", MessageState.DELETED),
        ("UNDELIV", MessageState.UNDELIVERABLE),
        ("ACCEPTD", MessageState.ACCEPTED),
        ("UNKNOWN", MessageState.UNKNOWN),
        ("REJECTD", MessageState.REJECTED),
        ("ENROUTE", MessageState.ENROUTE),
        ("SKIPPED", MessageState.SKIPPED),
        ("delivrd", MessageState.DELIVERED),
        ("FAILED", MessageState.UNDELIVERABLE),
        ("nonsense", None),
    ],
)
def test_stat_forms(stat: str, state: MessageState | None) -> None:
    assert message_state_from_stat(stat) == state


def test_message_ids_across_notations() -> None:
    submit_resp_id = canonical_message_id("0001A2B3", MessageIdFormat.HEX)
    receipt_id = canonical_message_id("107187", MessageIdFormat.DECIMAL)
    assert submit_resp_id == receipt_id == "107187"
    assert canonical_message_id(" AbC-1 ") == "abc-1"
    assert canonical_message_id("not-hex", MessageIdFormat.HEX) == "not-hex"
    assert message_id_candidates("1A2B3") & message_id_candidates("107187")
    assert not message_id_candidates("abc-1") & message_id_candidates("abc-2")


message_ids = st.one_of(
    st.integers(0, 10**10).map(str),
    st.integers(0, 2**40).map(lambda n: f"{n:X}"),
    st.uuids().map(str),
)
minute_dates = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
second_dates = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
receipt_texts = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20).map(
    str.strip
)


@given(
    message_ids,
    st.sampled_from(sorted(STAT_TEXT)),
    st.integers(0, 999),
    st.integers(0, 999),
    st.booleans(),
    st.data(),
    st.integers(0, 999).map(lambda n: f"{n:03d}"),
    receipt_texts,
)
def test_formatted_receipts_parse_back(
    message_id: str,
    state: MessageState,
    submitted: int,
    delivered: int,
    with_seconds: bool,
    data: st.DataObject,
    error: str,
    text: str,
) -> None:
    dates = second_dates if with_seconds else minute_dates
    submit_date, done_date = data.draw(dates), data.draw(dates)
    body = format_receipt_text(
        message_id=message_id,
        state=state,
        submitted=submitted,
        delivered=delivered,
        submit_date=submit_date,
        done_date=done_date,
        error=error,
        text=text,
        with_seconds=with_seconds,
    )
    parsed = parse_receipt_text(body)
    assert parsed is not None
    assert parsed.message_id == message_id
    assert parsed.state == state
    assert parsed.stat == STAT_TEXT[state]
    assert (parsed.submitted, parsed.delivered) == (submitted, delivered)
    assert (parsed.submit_date, parsed.done_date) == (submit_date, done_date)
    assert parsed.error == error
    assert parsed.text == text
    merged = parse_delivery_receipt(body.encode("ascii"), message_state=int(state))
    assert merged is not None
    assert merged.is_final is (state in FINAL_STATES)


@given(st.text(max_size=300))
def test_parsing_arbitrary_text_never_raises(body: str) -> None:
    parse_receipt_text(body)
    parse_delivery_receipt(body)
