"""Operator information from libphonenumber's metadata (gateway/numbers/operator_information.py)."""

from __future__ import annotations

import pytest

from gateway.core.errors import BadRequest
from gateway.numbers.operator_information import operator_information


def test_formats_without_and_with_details() -> None:
    [plain] = operator_information(["14255550123"], include_details=False)
    assert plain == {
        "phoneNumber": "+14255550123",
        "nationalFormat": "(425) 555-0123",
        "internationalFormat": "+1 425-555-0123",
    }
    [detailed] = operator_information(["+14255550123"], include_details=True)
    assert detailed["isoCountryCode"] == "US"
    assert detailed["numberType"] in ("geographic", "mobile", "unknown", "other")


@pytest.mark.parametrize(("numbers", "target"), [([], "phoneNumbers"), (["+1"] * 101, "phoneNumbers")])
def test_list_bounds(numbers: list[str], target: str) -> None:
    with pytest.raises(BadRequest) as caught:
        operator_information(numbers, include_details=False)
    assert caught.value.target == target


def test_an_impossible_number_names_its_index() -> None:
    with pytest.raises(BadRequest) as caught:
        operator_information(["+14255550123", "+1"], include_details=False)
    assert caught.value.code == "InvalidPhoneNumber"
    assert caught.value.target == "phoneNumbers[1]"
