"""sms.bind_types: what a bind refuses to be configured with or to encode, and its result kinds."""

from __future__ import annotations

import pytest

from sms.bind_types import BindConfig, BindMode, SessionRole, SubmitOutcome, SubmitRequest, SubmitResult

SOURCE = "15550001111"
DEST = "447700900123"


def test_requests_smpplib_would_mangle_are_refused() -> None:
    with pytest.raises(ValueError, match="message_payload"):
        SubmitRequest(SOURCE, DEST, b"x" * 255)
    with pytest.raises(ValueError, match="TLVs"):
        SubmitRequest(SOURCE, DEST, b"x", tlvs={"receipted_message_id": "1"})
    with pytest.raises(ValueError, match="20 characters"):
        SubmitRequest("1" * 21, DEST, b"x")
    with pytest.raises(ValueError, match="mutually exclusive"):
        SubmitRequest(SOURCE, DEST, b"x", tlvs={"message_payload": b"y"})


def test_a_config_needs_a_window_and_a_keepalive() -> None:
    base = {"name": "t", "host": "h", "port": 1, "system_id": "u", "password": "p"}
    with pytest.raises(ValueError, match="window_size"):
        BindConfig(**base, window_size=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="enquire_link"):
        BindConfig(**base, enquire_link_timeout=0)  # type: ignore[arg-type]


def test_each_mode_opens_its_sessions() -> None:
    assert BindMode.TRANSCEIVER.roles == (SessionRole.TRANSCEIVER,)
    assert BindMode.TRANSMITTER_RECEIVER.roles == (SessionRole.TRANSMITTER, SessionRole.RECEIVER)


@pytest.mark.parametrize(
    ("outcome", "ok", "retryable", "maybe_submitted"),
    [
        (SubmitOutcome.ACCEPTED, True, False, False),
        (SubmitOutcome.RETRY, False, True, False),
        (SubmitOutcome.UNKNOWN, False, True, True),
        (SubmitOutcome.FAILED, False, False, False),
    ],
)
def test_what_a_result_allows(
    outcome: SubmitOutcome, ok: bool, retryable: bool, maybe_submitted: bool
) -> None:
    result = SubmitResult(outcome)
    assert (result.ok, result.retryable, result.maybe_submitted) == (ok, retryable, maybe_submitted)
    assert result.status_name is None
    assert SubmitResult(outcome, status=0x58).status_name == "ESME_RTHROTTLED"
