from __future__ import annotations

import pytest
import smpplib.consts
from hypothesis import given
from hypothesis import strategies as st

from sms.status import (
    COMMAND_STATUSES,
    STATUS_CODES,
    StatusClass,
    backoff_delay,
    classify_command_status,
    command_status_name,
    describe_command_status,
    should_throttle,
)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0x00, "ESME_ROK"),
        (0x08, "ESME_RSYSERR"),
        (0x0A, "ESME_RINVSRCADR"),
        (0x0B, "ESME_RINVDSTADR"),
        (0x14, "ESME_RMSGQFUL"),
        (0x45, "ESME_RSUBMITFAIL"),
        (0x58, "ESME_RTHROTTLED"),
        (0xFF, "ESME_RUNKNOWNERR"),
    ],
)
def test_names(code: int, name: str) -> None:
    assert command_status_name(code) == name
    assert STATUS_CODES[name] == code


def test_table_agrees_with_smpplib_where_both_define_a_code() -> None:
    # smpplib names its constants SMPP_ESME_*; same codes, same names.
    for attribute in dir(smpplib.consts):
        if attribute.startswith("SMPP_ESME_"):
            code = getattr(smpplib.consts, attribute)
            assert command_status_name(code) == attribute.removeprefix("SMPP_"), attribute


def test_vendor_and_unknown_codes_get_readable_names() -> None:
    assert command_status_name(0x401) == "VENDOR_0x00000401"
    assert command_status_name(0x9999) == "UNKNOWN_0x00009999"
    assert describe_command_status(0x401) == "VENDOR_0x00000401 (0x00000401): SMSC vendor-specific error"


def test_description_for_failure_messages() -> None:
    assert describe_command_status(0x0B) == "ESME_RINVDSTADR (0x0000000B): Invalid destination address"


@pytest.mark.parametrize("code", [0x58, 0x14, 0x08, 0x64, 0x04])
def test_transient_statuses(code: int) -> None:
    assert classify_command_status(code) == StatusClass.TRANSIENT


@pytest.mark.parametrize("code", [0x0A, 0x0B, 0x45, 0x01, 0x65, 0x66, 0xFF, 0x401, 0x12345])
def test_permanent_statuses(code: int) -> None:
    assert classify_command_status(code) == StatusClass.PERMANENT


def test_ok() -> None:
    assert classify_command_status(0) == StatusClass.OK


def test_configuration_can_reclassify() -> None:
    assert classify_command_status(0x45, extra_transient=frozenset({0x45})) == StatusClass.TRANSIENT
    assert classify_command_status(0x08, extra_permanent=frozenset({0x08})) == StatusClass.PERMANENT
    both = frozenset({0x400})
    assert classify_command_status(0x400, extra_transient=both, extra_permanent=both) == StatusClass.PERMANENT


def test_throttling() -> None:
    assert should_throttle(0x58)
    assert should_throttle(0x14)
    assert not should_throttle(0x08)


def test_backoff() -> None:
    assert [backoff_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(3, base_seconds=0.5, cap_seconds=10, jitter=0.5) == 1.0
    assert backoff_delay(10_000) == 60
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(0)
    with pytest.raises(ValueError, match="jitter"):
        backoff_delay(1, jitter=1.0)


@given(st.integers(0, 2**32 - 1))
def test_every_code_has_a_name_and_a_class(code: int) -> None:
    assert command_status_name(code)
    assert describe_command_status(code)
    expected_ok = code == 0
    assert (classify_command_status(code) == StatusClass.OK) is expected_ok


def test_codes_and_names_are_unique() -> None:
    assert len(COMMAND_STATUSES) == len(STATUS_CODES)
