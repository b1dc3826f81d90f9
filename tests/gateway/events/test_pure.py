"""Signing, SSRF classification and the retry schedule: pure logic, property-tested.

The decisions after an attempt (the delivery state machine) are in test_lifecycle.py."""

from __future__ import annotations

import ipaddress
import random
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.events import signing
from gateway.events.backoff import NO_RETRY_STATUS, Backoff, Outcome, classify_status
from gateway.events.ssrf import (
    AddressClass,
    DestinationRefused,
    Policy,
    check_destination,
    classify,
    parse_networks,
)

secrets_ = st.builds(lambda _: signing.generate_secret(), st.integers())
bodies = st.binary(max_size=2000).map(lambda b: b.decode("latin-1").encode())


@given(secret=secrets_, message_id=st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True), body=bodies)
def test_signatures_verify_with_standardwebhooks(secret: str, message_id: str, body: bytes) -> None:
    now = int(time.time())
    headers = signing.sign_headers([secret], message_id, now, body)
    assert headers["webhook-id"] == message_id
    assert headers["webhook-signature"].startswith("v1,")
    Webhook(secret).verify(body, headers, json_parse=False)


@given(old=secrets_, new=secrets_, body=bodies)
def test_both_secrets_verify_during_rotation(old: str, new: str, body: bytes) -> None:
    headers = signing.sign_headers([new, old], "msg_1", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(body, headers, json_parse=False)
    Webhook(old).verify(body, headers, json_parse=False)
    other = signing.generate_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers, json_parse=False)


@given(secret=secrets_, body=bodies.filter(bool))
def test_tampered_body_fails(secret: str, body: bytes) -> None:
    headers = signing.sign_headers([secret], "msg_1", int(time.time()), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b"x", headers, json_parse=False)


def test_secret_format() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(signing.secret_key(secret)) == 32
    with pytest.raises(ValueError):
        signing.secret_key("nope")


# SSRF -------------------------------------------------------------------------------------------

REFUSED = {
    "127.0.0.1": AddressClass.LOOPBACK,
    "127.8.9.10": AddressClass.LOOPBACK,
    "::1": AddressClass.LOOPBACK,
    "::ffff:127.0.0.1": AddressClass.LOOPBACK,
    "10.1.2.3": AddressClass.PRIVATE,
    "172.16.0.1": AddressClass.PRIVATE,
    "192.168.1.1": AddressClass.PRIVATE,
    "100.64.0.1": AddressClass.PRIVATE,
    "fd12:3456::1": AddressClass.PRIVATE,
    "::ffff:10.0.0.1": AddressClass.PRIVATE,
    "169.254.1.1": AddressClass.LINK_LOCAL,
    "fe80::1": AddressClass.LINK_LOCAL,
    "224.0.0.1": AddressClass.MULTICAST,
    "239.255.255.250": AddressClass.MULTICAST,
    "ff02::1": AddressClass.MULTICAST,
    "169.254.169.254": AddressClass.CLOUD_METADATA,
    "fd00:ec2::254": AddressClass.CLOUD_METADATA,
    "100.100.100.200": AddressClass.CLOUD_METADATA,
    "168.63.129.16": AddressClass.CLOUD_METADATA,
    "0.0.0.0": AddressClass.UNSPECIFIED,
    "::": AddressClass.UNSPECIFIED,
    "240.0.0.1": AddressClass.RESERVED,
    "64:ff9b::7f00:1": AddressClass.LOOPBACK,
    "2002:7f00:1::": AddressClass.LOOPBACK,
}


@pytest.mark.parametrize(("address", "expected"), sorted(REFUSED.items()))
def test_refused_classes(address: str, expected: AddressClass) -> None:
    assert classify(ipaddress.ip_address(address)) is expected


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"])
def test_public_addresses_pass(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is None


@given(st.ip_addresses(v=4, network="10.0.0.0/8") | st.ip_addresses(v=4, network="127.0.0.0/8"))
def test_private_and_loopback_ranges_always_refused(address: ipaddress.IPv4Address) -> None:
    assert classify(address) in (AddressClass.PRIVATE, AddressClass.LOOPBACK)
    with pytest.raises(DestinationRefused):
        Policy().check_address(str(address), "https")
    mapped = ipaddress.IPv6Address("::ffff:" + str(address))
    assert classify(mapped) is not None


def _resolver(*answers: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(answers)


def test_registration_check_uses_every_resolved_address() -> None:
    policy = Policy()
    check_destination("https://hooks.example/x", policy, _resolver("93.184.216.34"))
    with pytest.raises(DestinationRefused, match="loopback"):
        check_destination("https://hooks.example/x", policy, _resolver("93.184.216.34", "127.0.0.1"))
    with pytest.raises(DestinationRefused, match="https"):
        check_destination("http://hooks.example/x", policy, _resolver("93.184.216.34"))
    for bad in ("ftp://x/", "https://user:pw@hooks.example/", "https:///nohost", "not a url"):
        with pytest.raises(DestinationRefused):
            check_destination(bad, policy, _resolver("93.184.216.34"))


def test_allowed_networks_open_exceptions_and_allow_http() -> None:
    policy = Policy(parse_networks(["127.0.0.0/8", "::1/128"]))
    check_destination("http://localhost:9/x", policy, _resolver("127.0.0.1", "::1"))
    with pytest.raises(DestinationRefused, match="private"):
        check_destination("https://internal/x", policy, _resolver("10.0.0.1"))


# Backoff ----------------------------------------------------------------------------------------


@given(status=st.integers(100, 599))
def test_status_classification(status: int) -> None:
    outcome = classify_status(status)
    if 200 <= status < 300:
        assert outcome is Outcome.DELIVERED
    elif status in NO_RETRY_STATUS:
        assert outcome is Outcome.DEAD_LETTER
    else:
        assert outcome is Outcome.RETRY
    assert classify_status(None) is Outcome.RETRY


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert classify_status(status) is Outcome.RETRY


@given(
    base=st.floats(0.01, 100),
    cap=st.floats(1, 86400),
    attempt=st.integers(1, 100),
    seed=st.integers(),
)
def test_backoff_grows_is_capped_and_jittered(base: float, cap: float, attempt: int, seed: int) -> None:
    backoff = Backoff(base, cap, 0.2)
    nominal = backoff.nominal(attempt)
    assert nominal <= cap
    assert backoff.nominal(attempt + 1) >= nominal
    delay = backoff.delay(attempt, random.Random(seed))
    assert 0.8 * nominal - 1e-9 <= delay <= min(cap, 1.2 * nominal) + 1e-9


def test_default_budget_spans_about_a_day() -> None:
    backoff = Backoff(10, 3600, 0.0)
    total = sum(backoff.nominal(n) for n in range(1, 30))
    assert 20 * 3600 < total < 26 * 3600


def test_retry_after_parsing() -> None:
    from gateway.events.backoff import parse_retry_after

    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-3") is None
    assert parse_retry_after(None) is None


def test_allowed_networks_setting_is_validated() -> None:
    from pydantic import ValidationError

    from gateway.core.settings import Settings

    assert Settings(webhook_allowed_networks="127.0.0.0/8, ::1/128").webhook_allowed_networks == [
        "127.0.0.0/8",
        "::1/128",
    ]
    with pytest.raises(ValidationError, match="CIDR"):
        Settings(webhook_allowed_networks="127.0.0.0/8,not-a-network")
