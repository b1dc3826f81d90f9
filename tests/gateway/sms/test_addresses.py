"""Phone numbers as the SMS API takes them (gateway/sms/addresses.py)."""

from __future__ import annotations

import pytest

from gateway.core.errors import InvalidField
from gateway.sms.addresses import e164_and_region, normalise_number, region_of, sender_or_400


def test_a_number_in_international_form_gives_its_e164_and_region() -> None:
    assert e164_and_region(" +1 425-555-0100 ") == ("+14255550100", "US")
    assert e164_and_region("+80012345678") == ("+80012345678", "001")
    assert normalise_number("+44 20 7183 8750") == "+442071838750"


@pytest.mark.parametrize("raw", ["14255550100", "004420718387500", "+1", "+1425555010", "hello", ""])
def test_anything_else_is_no_number(raw: str) -> None:
    assert e164_and_region(raw) is None
    assert normalise_number(raw) is None


def test_region_of_a_number_and_of_garbage() -> None:
    assert region_of("+442071838750") == "GB"
    assert region_of("not a number") == ""


def test_a_malformed_sender_is_a_400_on_from() -> None:
    assert sender_or_400("+14255550100") == "+14255550100"
    with pytest.raises(InvalidField) as refused:
        sender_or_400("4255550100")
    assert (refused.value.status_code, refused.value.target) == (400, "from")
