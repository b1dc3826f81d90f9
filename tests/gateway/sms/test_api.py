"""POST /sms, opt-outs and delivery reports through the app, signed as the ACS SDKs sign."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.sms.models import SmsMessage
from tests.support.acs import AcsClient, admin_headers

from .support import give_number

SENDER = "+14255550100"
OTHER = "+14255550199"
TO1 = "+14255550123"
TO2 = "+442071838750"


def send(acs: AcsClient, body: dict[str, Any], version: str = "2021-03-07") -> Any:
    return acs.post(f"/sms?api-version={version}", body)


@pytest.fixture
def sender(database: Database, resource_a: dict[str, str]) -> str:
    give_number(database, resource_a["id"], SENDER)
    give_number(database, resource_a["id"], OTHER, sms="inbound")
    return SENDER


def rows(database: Database) -> list[SmsMessage]:
    with database.session() as session:
        return list(session.scalars(select(SmsMessage).order_by(SmsMessage.to_number)))


@pytest.mark.parametrize("version", ["2021-03-07", "2026-01-23"])
def test_send_queues_one_message_per_recipient(
    acs_a: AcsClient, database: Database, sender: str, version: str
) -> None:
    body = {
        "from": sender,
        "smsRecipients": [{"to": TO1}, {"to": "+44 20 7183 8750"}, {"to": "+1123"}],
        "message": "Hello world",
        "smsSendOptions": {"enableDeliveryReport": True, "tag": "t1"},
    }
    response = send(acs_a, body, version)
    assert response.status_code == 202, response.text
    value = response.json()["value"]
    assert [v["to"] for v in value] == [TO1, TO2, "+1123"]
    assert [v["httpStatusCode"] for v in value] == [202, 202, 400]
    assert value[0]["successful"] is True
    assert value[0]["messageId"].startswith("Outgoing_")
    assert value[2]["successful"] is False
    assert "Invalid To phone number" in value[2]["errorMessage"]
    stored = rows(database)
    assert [(m.to_number, m.state, m.segment_count, m.tag, m.enable_delivery_report) for m in stored] == [
        (TO1, "queued", 1, "t1", True),
        (TO2, "queued", 1, "t1", True),
    ]


@pytest.mark.parametrize(
    ("options", "timeout", "validity"),
    [
        ({"enableDeliveryReport": True, "validityPeriodSeconds": 600}, 600, 600),
        # the report window of 2026-01-23 wins; the SMSC still gets the validity period
        (
            {
                "enableDeliveryReport": True,
                "validityPeriodSeconds": 600,
                "deliveryReportTimeoutInSeconds": 120,
            },
            120,
            600,
        ),
        ({"enableDeliveryReport": False}, 3600, None),  # TRUNKLINE_SMS_DELIVERY_REPORT_TIMEOUT_SECONDS
    ],
)
def test_validity_period_is_kept_and_bounds_the_report_window(
    acs_a: AcsClient,
    database: Database,
    sender: str,
    options: dict[str, Any],
    timeout: int,
    validity: int | None,
) -> None:
    body = {"from": sender, "smsRecipients": [{"to": TO1}], "message": "hi", "smsSendOptions": options}
    assert send(acs_a, body).status_code == 202
    [message] = rows(database)
    assert (message.delivery_report_timeout_seconds, message.validity_period_seconds) == (timeout, validity)


@pytest.mark.parametrize("validity", [0, -60, "soon", 2**31])
def test_a_validity_period_that_is_not_a_positive_int32_is_400(
    acs_a: AcsClient, database: Database, sender: str, validity: Any
) -> None:
    options = {"enableDeliveryReport": True, "validityPeriodSeconds": validity}
    body = {"from": sender, "smsRecipients": [{"to": TO1}], "message": "hi", "smsSendOptions": options}
    response = send(acs_a, body)
    assert response.status_code == 400
    assert response.json()["error"]["target"] == "smsSendOptions.validityPeriodSeconds"
    assert rows(database) == []


def test_segments_and_coding_are_counted(acs_a: AcsClient, database: Database, sender: str) -> None:
    send(acs_a, {"from": sender, "smsRecipients": [{"to": TO1}], "message": "x" * 161})
    send(acs_a, {"from": sender, "smsRecipients": [{"to": TO2}], "message": "Привет"})
    by_to = {m.to_number: m for m in rows(database)}
    assert (by_to[TO1].segment_count, by_to[TO1].data_coding) == (2, 0)
    assert (by_to[TO2].segment_count, by_to[TO2].data_coding) == (1, 8)


def test_sender_must_be_owned_and_sms_outbound(acs_a: AcsClient, acs_b: AcsClient, sender: str) -> None:
    body: dict[str, Any] = {"from": sender, "smsRecipients": [{"to": TO1}], "message": "hi"}
    response = send(acs_b, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidFromPhoneNumber"
    response = send(acs_a, {**body, "from": OTHER})
    assert response.status_code == 400
    assert "outbound" in response.json()["error"]["message"]


INVALID_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"smsRecipients": [{"to": TO1}], "message": "hi"}, "From"),
    ({"from": SENDER, "smsRecipients": [], "message": "hi"}, "SmsRecipients"),
    ({"from": SENDER, "smsRecipients": [{"to": TO1}] * 101, "message": "hi"}, "SmsRecipients"),
    ({"from": SENDER, "smsRecipients": [{"to": TO1}, {}], "message": "hi"}, "SmsRecipients[1].To"),
    ({"from": SENDER, "smsRecipients": [{"to": TO1}], "message": "x" * 2049}, "Message"),
    ({"from": "not a number", "smsRecipients": [{"to": TO1}], "message": "hi"}, "From"),
    (
        {
            "from": SENDER,
            "smsRecipients": [{"to": TO1}],
            "message": "hi",
            "smsSendOptions": {"enableDeliveryReport": True, "deliveryReportTimeoutInSeconds": 5},
        },
        "SmsSendOptions.DeliveryReportTimeoutInSeconds",
    ),
    # enableDeliveryReport is required in SmsSendOptions (both versions)
    (
        {"from": SENDER, "smsRecipients": [{"to": TO1}], "message": "hi", "smsSendOptions": {"tag": "t"}},
        "SmsSendOptions.EnableDeliveryReport",
    ),
]


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES)
def test_invalid_requests_are_validation_problems_in_2026_01_23(
    acs_a: AcsClient, database: Database, sender: str, body: dict[str, Any], field: str
) -> None:
    response = send(acs_a, body, "2026-01-23")
    assert response.status_code == 400, response.text
    # Sms 2026-01-23's BadRequestErrorResponse in its validation form (the OptOutAdd example)
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://tools.ietf.org/html/rfc9110#section-15.5.1"
    assert (problem["title"], problem["status"]) == ("One or more validation errors occurred.", 400)
    assert list(problem["errors"]) == [field]
    assert all(isinstance(m, str) and m for m in problem["errors"][field])
    assert_trace_id(problem["traceId"], response)
    assert rows(database) == []


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES)
def test_invalid_requests_are_acs_errors_in_2021_03_07(
    acs_a: AcsClient, database: Database, sender: str, body: dict[str, Any], field: str
) -> None:
    response = send(acs_a, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] in ("InvalidRequest", "InvalidFromPhoneNumber")
    assert error["target"].lower() == field.lower()
    assert rows(database) == []


def assert_trace_id(trace_id: str, response: Any) -> None:
    """A W3C traceparent whose trace id is the request id of x-ms-request-id."""
    version, trace, span, flags = trace_id.split("-")
    assert (version, flags, len(span)) == ("00", "00", 16)
    assert trace == response.headers["x-ms-request-id"].replace("-", "")


@pytest.mark.parametrize("version", ["2021-03-07", "2026-01-23"])
def test_a_body_that_is_not_json_is_400(acs_a: AcsClient, database: Database, version: str) -> None:
    response = acs_a.post(f"/sms?api-version={version}", body=b'{"from": "+1425555')
    assert response.status_code == 400
    if version == "2026-01-23":
        assert response.json()["errors"] == {"$": ["The request body is not valid JSON."]}
    else:
        not_json = {"code": "BadRequest", "message": "The request body is not valid JSON."}
        assert response.json() == {"error": not_json}
    assert rows(database) == []


def test_an_opt_out_sender_of_bad_form_is_a_validation_problem(acs_a: AcsClient, sender: str) -> None:
    path = "/sms/optouts:add?api-version=2026-01-23"
    response = acs_a.post(path, {"from": "+1", "recipients": [{"to": TO1}]})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["From"]
    # a well-formed number the resource does not own is not a validation failure: ACS's error
    unowned = "+14255550777"
    response = acs_a.post(path, {"from": unowned, "recipients": [{"to": TO1}]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidFromPhoneNumber"


def test_messaging_connect_is_refused_clearly(acs_a: AcsClient, database: Database, sender: str) -> None:
    connect = {"partner": "Connect_Partner", "partnerParams": {"apiKey": "k"}}
    options = {"enableDeliveryReport": True, "messagingConnect": connect}
    body = {"from": sender, "smsRecipients": [{"to": TO1}], "message": "hi", "smsSendOptions": options}
    response = send(acs_a, body, "2026-01-23")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MessagingConnectNotSupported"
    # its form is checked first, as the spec gives it (partnerParams: at least one property)
    options["messagingConnect"] = {"partner": "Connect_Partner", "partnerParams": {}}
    response = send(acs_a, body, "2026-01-23")
    assert list(response.json()["errors"]) == ["SmsSendOptions.MessagingConnect.PartnerParams"]
    assert rows(database) == []


def test_api_version_is_required(acs_a: AcsClient, sender: str) -> None:
    response = acs_a.post("/sms", {"from": sender, "smsRecipients": [{"to": TO1}], "message": "hi"})
    assert response.status_code == 400
    response = acs_a.post(
        "/sms/optouts:check?api-version=2021-03-07", {"from": sender, "recipients": [{"to": TO1}]}
    )
    assert response.status_code == 400


def test_repeatability_returns_the_first_result_and_sends_once(
    acs_a: AcsClient, database: Database, sender: str
) -> None:
    first_sent = format_datetime(datetime.now(UTC), usegmt=True)
    recipient = {
        "to": TO1,
        "repeatabilityRequestId": "fda6d242-46aa-4247-8bf6-619a1206f9c3",
        "repeatabilityFirstSent": first_sent,
    }
    body = {"from": sender, "smsRecipients": [recipient], "message": "once"}
    first = send(acs_a, body).json()["value"][0]
    again = send(acs_a, body).json()["value"][0]
    assert first["repeatabilityResult"] == "accepted"
    assert first["successful"]
    assert again["messageId"] == first["messageId"]
    assert again["repeatabilityResult"] == "accepted"
    assert len(rows(database)) == 1
    bad = {**recipient, "repeatabilityRequestId": "other", "repeatabilityFirstSent": "yesterday"}
    rejected = send(acs_a, {**body, "smsRecipients": [bad]}).json()["value"][0]
    assert rejected["repeatabilityResult"] == "rejected"
    assert rejected["httpStatusCode"] == 400
    assert len(rows(database)) == 1


def test_opt_out_round_trip(acs_a: AcsClient, database: Database, sender: str) -> None:
    api = "2026-01-23"
    optout = {"from": sender, "recipients": [{"to": TO1}, {"to": "+123"}]}
    added = acs_a.post(f"/sms/optouts:add?api-version={api}", optout)
    assert added.status_code == 200
    assert [v["httpStatusCode"] for v in added.json()["value"]] == [200, 400]
    checked = acs_a.post(f"/sms/optouts:check?api-version={api}", optout).json()["value"]
    assert checked[0] == {"to": TO1, "httpStatusCode": 200, "isOptedOut": True}
    result = send(
        acs_a, {"from": sender, "smsRecipients": [{"to": TO1}, {"to": TO2}], "message": "hi"}
    ).json()
    assert [v["successful"] for v in result["value"]] == [False, True]
    assert "opted out" in result["value"][0]["errorMessage"]
    acs_a.post(f"/sms/optouts:remove?api-version={api}", optout)
    checked = acs_a.post(f"/sms/optouts:check?api-version={api}", optout).json()["value"]
    assert checked[0]["isOptedOut"] is False
    result = send(acs_a, {"from": sender, "smsRecipients": [{"to": TO1}], "message": "hi"}).json()
    assert result["value"][0]["successful"] is True


def test_resource_quota_answers_429(
    acs_a: AcsClient, database: Database, sender: str, settings: Settings
) -> None:
    settings.sms_quota_per_resource_per_minute = 3
    body = {"from": sender, "smsRecipients": [{"to": TO1}, {"to": TO2}], "message": "hi"}
    assert send(acs_a, body).status_code == 202
    response = send(acs_a, body)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert len(rows(database)) == 2


def test_country_quota_fails_recipients(
    acs_a: AcsClient, database: Database, sender: str, settings: Settings
) -> None:
    settings.sms_quota_per_country_per_minute = 1
    body = {
        "from": sender,
        "smsRecipients": [{"to": TO1}, {"to": "+14255550124"}, {"to": TO2}],
        "message": "hi",
    }
    value = send(acs_a, body).json()["value"]
    assert [v["httpStatusCode"] for v in value] == [202, 429, 202]
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(SmsMessage)) == 2


def test_delivery_report_is_404_until_final(
    acs_a: AcsClient, acs_b: AcsClient, database: Database, sender: str
) -> None:
    message_id = send(acs_a, {"from": sender, "smsRecipients": [{"to": TO1}], "message": "hi"}).json()[
        "value"
    ][0]["messageId"]
    path = f"/deliveryReports/{message_id}?api-version=2026-01-23"
    missing = acs_a.request("GET", path)
    # Sms 2026-01-23's ErrorResponse: a problem document (type, title, status required)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    problem = missing.json()
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Not Found", 404)
    assert_trace_id(problem["traceId"], missing)
    with database.session() as session:
        message = session.get(SmsMessage, message_id)
        assert message is not None
        message.state = "delivered"
        message.delivery_status = "Delivered"
        message.delivery_status_details = "No error."
        message.report_received_at = datetime.now(UTC)
        message.segments_succeeded = 1
    report = acs_a.request("GET", path)
    assert report.status_code == 200
    assert report.json()["deliveryStatus"] == "Delivered"
    assert report.json()["deliveryAttempts"][0]["segmentsSucceeded"] == 1
    assert acs_b.request("GET", path).status_code == 404


def test_operator_api_manages_connections_and_routes(client: Any) -> None:
    headers = admin_headers()
    spec = {"name": "op1", "host": "127.0.0.1", "port": 2775, "systemId": "u", "password": "p"}
    assert client.post("/admin/smpp/connections", json=spec).status_code == 401
    created = client.post("/admin/smpp/connections", json=spec, headers=headers)
    assert created.status_code == 201, created.text
    assert client.post("/admin/smpp/connections", json=spec, headers=headers).status_code == 409
    route = client.post("/admin/smpp/routes", json={"prefix": "+1", "connection": "op1"}, headers=headers)
    assert route.status_code == 201
    assert client.get("/admin/smpp/routes", headers=headers).json()["value"] == [
        {"prefix": "+1", "connection": "op1", "priority": 0}
    ]
    bad = client.post("/admin/smpp/routes", json={"prefix": "+1", "connection": "nope"}, headers=headers)
    assert bad.status_code == 404


def test_country_quota_overrides(acs_a: AcsClient, sender: str, settings: Settings) -> None:
    settings.sms_country_quotas = ["GB=1", "US=0"]
    body = {
        "from": sender,
        "smsRecipients": [{"to": TO1}, {"to": "+14255550124"}, {"to": TO2}, {"to": "+442071838751"}],
        "message": "hi",
    }
    value = send(acs_a, body).json()["value"]
    assert [v["httpStatusCode"] for v in value] == [202, 202, 202, 429]
    assert "GB" in value[3]["errorMessage"]


def test_country_quota_setting_is_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(sms_country_quotas="GB:3")


def test_concurrent_requests_with_one_repeatability_id_store_one_message(
    database: Database, settings: Settings, resource_a: dict[str, str], sender: str
) -> None:
    import threading

    from gateway.sms import send as sms_send
    from gateway.sms.schemas import SendMessageRequest

    first_sent = format_datetime(datetime.now(UTC), usegmt=True)
    request = SendMessageRequest.model_validate(
        {
            "from": sender,
            "smsRecipients": [
                {"to": TO1, "repeatabilityRequestId": "same-id", "repeatabilityFirstSent": first_sent}
            ],
            "message": "race",
        }
    )
    barrier = threading.Barrier(4)
    answers: list[str] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            barrier.wait(5)
            with database.session() as session:
                items = sms_send.send(session, settings, resource_a["id"], request, datetime.now(UTC)).items
            answers.append(items[0]["messageId"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(set(answers)) == 1
    assert len(rows(database)) == 1


def test_a_non_geographic_recipient_is_stored(acs_a: AcsClient, database: Database, sender: str) -> None:
    # +800 (International Freephone) is valid, and phonenumbers' region for it is "001"
    response = send(acs_a, {"from": sender, "smsRecipients": [{"to": "+80012345678"}], "message": "hi"})
    assert response.status_code == 202
    [item] = response.json()["value"]
    assert item["successful"] is True
    with database.read_session() as session:
        message = session.get(SmsMessage, item["messageId"])
        assert message is not None
        assert message.country_code == "001"


@pytest.mark.parametrize("version", ["2021-03-07", "2026-01-23"])
def test_too_many_recipients_is_a_sentence(acs_a: AcsClient, sender: str, version: str) -> None:
    body = {"from": sender, "smsRecipients": [{"to": TO1}] * 101, "message": "Hello"}
    response = send(acs_a, body, version)
    assert response.status_code == 400
    text = response.text
    assert "must have at most 100 entries; it has 101" in text
    assert "after validation" not in text
    assert "Input should" not in text
