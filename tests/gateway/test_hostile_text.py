"""The text rule (gateway/core/text.py) at the API: each input issue 16 found answering 500 is a
400 (or 404) in ACS shape, on SQLite and PostgreSQL, and nothing was stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.core.db import Database
from tests.gateway.sms.support import give_number
from tests.support.acs import AcsClient, admin_headers, assert_acs_error

SMS_OLD = "2021-03-07"
SMS_NEW = "2026-01-23"
NUMBERS = "2025-06-01"
IDENTITY = "2023-10-01"
PUBLIC_HOOK = "https://93.184.216.34/hook"  # an IP literal: resolves without DNS


def assert_refused(response: httpx.Response, *statuses: int) -> None:
    """A 4xx of ``statuses`` (400 by default) in ACS shape, or, for the SMS 2026-01-23 routes
    that answer validation problems, a problem document."""
    allowed = statuses or (400,)
    assert response.status_code in allowed, response.text
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        body = response.json()
        assert body["status"] == response.status_code
        assert body["errors"] or body.get("detail"), body
    else:
        assert_acs_error(response, response.status_code)


SENDER = "+14255550100"


@pytest.fixture
def sender(database: Database, resource_a: dict[str, str]) -> str:
    """A number resource_a owns, so that a send gets past its ``from``."""
    give_number(database, resource_a["id"], SENDER)
    return SENDER


def send_body(**changes: Any) -> dict[str, Any]:
    recipient: dict[str, Any] = {"to": "+14255550123"}
    recipient.update(changes.pop("recipient", {}))
    body: dict[str, Any] = {
        "from": SENDER,
        "smsRecipients": [recipient],
        "message": "hello",
        "smsSendOptions": {"enableDeliveryReport": True},
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("version", [SMS_OLD, SMS_NEW])
@pytest.mark.parametrize(
    "body",
    [
        send_body(message="a\u0000b"),
        send_body(smsSendOptions={"enableDeliveryReport": True, "tag": "t\u0000"}),
        send_body(recipient={"repeatabilityRequestId": "r" * 65}),
        send_body(recipient={"repeatabilityFirstSent": "f" * 65}),
        send_body(message="a\ud800b"),
        send_body(message="bell\u0007"),
        send_body(recipient={"to": "+1425555\u00000123"}),
    ],
    ids=["nul-message", "nul-tag", "long-repeatability-id", "long-first-sent", "surrogate", "bel", "nul-to"],
)
def test_post_sms_refuses_bad_text(acs_a: AcsClient, sender: str, version: str, body: dict[str, Any]) -> None:
    refused = acs_a.post(f"/sms?api-version={version}", body)
    assert_refused(refused)
    assert "InvalidFromPhoneNumber" not in refused.text
    assert acs_a.post(f"/sms?api-version={version}", send_body()).status_code == 202


def test_post_sms_refuses_a_surrogate_sent_as_utf8_bytes(acs_a: AcsClient) -> None:
    raw = b'{"from": SENDER, "smsRecipients": [{"to": "+14255550123"}], "message": "\xed\xa0\x80"}'
    assert_refused(acs_a.post(f"/sms?api-version={SMS_OLD}", body=raw))


def test_free_text_keeps_its_newlines_and_tabs(acs_a: AcsClient, sender: str) -> None:
    answer = acs_a.post(f"/sms?api-version={SMS_OLD}", send_body(message="line one\n\tline two\r\n"))
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize(
    "path",
    [
        f"/deliveryReports/%00?api-version={SMS_NEW}",
        f"/phoneNumbers/operations/%00?api-version={NUMBERS}",
        f"/availablePhoneNumbers/searchResults/%00?api-version={NUMBERS}",
        f"/availablePhoneNumbers/countries/US/localities?locality=%00&api-version={NUMBERS}",
        f"/availablePhoneNumbers/countries/US/areaCodes?phoneNumberType=geographic&locality=%00&api-version={NUMBERS}",
        "/eventSubscriptions/%00",
        "/eventSubscriptions/%FF%FE",
        "/eventSubscriptions/a%0Ab",
        f"/phoneNumbers/%C3%28?api-version={NUMBERS}",
    ],
)
def test_tenant_urls_refuse_bad_text(acs_a: AcsClient, database: Database, path: str) -> None:
    assert_refused(acs_a.request("GET", path), 400, 404)


def test_attempts_refuse_a_nul_event_id(client: TestClient, acs_a: AcsClient, database: Database) -> None:
    created = acs_a.post(
        "/eventSubscriptions",
        {"endpointUrl": PUBLIC_HOOK, "includedEventTypes": ["Microsoft.Communication.SMSReceived"]},
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert_refused(acs_a.request("GET", f"/eventSubscriptions/{sid}/attempts?eventId=%00"))
    assert_refused(acs_a.post(f"/eventSubscriptions/{sid}:replay", {"eventIds": ["\u0000"]}))
    assert acs_a.post(f"/eventSubscriptions/{sid}:replay", {"eventIds": ["e" * 5000]}).status_code == 200
    assert acs_a.request("GET", f"/eventSubscriptions/{sid}/attempts?eventId=x").status_code == 200


def test_subscription_bodies_refuse_bad_text(acs_a: AcsClient, database: Database) -> None:
    base = {"endpointUrl": PUBLIC_HOOK, "includedEventTypes": ["Microsoft.Communication.SMSReceived"]}
    assert_refused(acs_a.post("/eventSubscriptions", {**base, "subjectBeginsWith": "\u0000"}))
    assert_refused(acs_a.post("/eventSubscriptions", {**base, "endpointUrl": PUBLIC_HOOK + "\u0000"}))
    assert_refused(acs_a.post("/eventSubscriptions", {**base, "includedEventTypes": ["\u0000"]}))
    assert_refused(acs_a.post("/eventSubscriptions", {**base, "\u0000": 1}))


def test_identity_path_refuses_nul(acs_a: AcsClient, database: Database) -> None:
    issue = f"/identities/%00/:issueAccessToken?api-version={IDENTITY}"
    assert_refused(acs_a.post(issue, {"scopes": ["chat"]}))
    assert_refused(acs_a.request("DELETE", f"/identities/%00?api-version={IDENTITY}"), 400, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/resources/%00",
        "/admin/eventSubscriptions?resource=%00",
        "/admin/numbers?carrier=%00",
        "/admin/numbers?country=%00",
        "/admin/numbers?country=%FF",
        "/admin/resources/" + "r" * 5000,
    ],
)
def test_operator_urls_refuse_bad_text(client: TestClient, database: Database, path: str) -> None:
    assert_refused(client.get(path, headers=admin_headers()), 400, 404)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/carriers", {"name": "car\u0000rier"}),
        ("/admin/carriers", {"name": "carrier", "notes": "n\u0000"}),
        ("/admin/resources", {"name": "a\u0000b"}),
        (
            "/admin/smpp/connections",
            {"name": "c", "host": "h\u0000", "port": 1, "systemId": "s", "password": "p"},
        ),
    ],
)
def test_operator_bodies_refuse_bad_text(
    client: TestClient, database: Database, path: str, body: dict[str, Any]
) -> None:
    assert_refused(client.post(path, json=body, headers=admin_headers()))
