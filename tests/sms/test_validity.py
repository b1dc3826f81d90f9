from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sms.validity import MAX_RELATIVE_SECONDS, relative_period_seconds, relative_validity_period


@pytest.mark.parametrize(
    ("seconds", "written"),
    [
        (1, "000000000001000R"),
        (60, "000000000100000R"),
        (3_600, "000000010000000R"),
        (86_400, "000001000000000R"),
        (90_061, "000001010101000R"),  # 1 day, 1 hour, 1 minute, 1 second
        (43_200, "000000120000000R"),
        (MAX_RELATIVE_SECONDS, "000099235959000R"),
        (MAX_RELATIVE_SECONDS + 1, "000099235959000R"),  # clamped
        (2_147_483_647, "000099235959000R"),
    ],
)
def test_relative_validity_period_examples(seconds: int, written: str) -> None:
    assert relative_validity_period(seconds) == written


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_period_is_at_least_a_second(seconds: int) -> None:
    with pytest.raises(ValueError, match="at least one second"):
        relative_validity_period(seconds)


@given(st.integers(min_value=1, max_value=MAX_RELATIVE_SECONDS))
def test_every_period_reads_back_as_written(seconds: int) -> None:
    written = relative_validity_period(seconds)
    # SMPP v3.4 §7.1.1: 16 octets, 'R' for relative, the tenths and nn fields zero
    assert len(written) == 16
    assert written.endswith("000R")
    assert relative_period_seconds(written) == seconds


@given(st.integers(min_value=MAX_RELATIVE_SECONDS + 1, max_value=2**31 - 1))
def test_longer_periods_are_clamped_to_the_longest(seconds: int) -> None:
    assert relative_period_seconds(relative_validity_period(seconds)) == MAX_RELATIVE_SECONDS


@pytest.mark.parametrize(
    "value",
    ["", "261129103000000+", "010000000000000R", "000100000000000R", "000000240000000R", "0000000000600000R"],
)
def test_what_is_not_a_plain_relative_period_reads_as_none(value: str) -> None:
    assert relative_period_seconds(value) is None
