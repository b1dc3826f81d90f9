"""POST /sms's send path (gateway/sms/send.py). send_many: a batch of requests answered and
stored exactly as the same requests sent one after the other (each in a savepoint, as the
admission's fallback sends them).

Two resources with a sender each: one gets the requests one by one, the other as one batch; the
answers (message ids replaced by the order they first appear in), the stored rows and the quota
counters must be the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.core.db import Database
from gateway.core.errors import AcsError
from gateway.core.settings import Settings
from gateway.resources.service import create_resource
from gateway.sms import send as sms_send
from gateway.sms.models import SmsMessage, SmsOptOut, SmsSendCounter
from gateway.sms.schemas import SendMessageRequest

from .support import give_number

US = [f"+1425555{n:04d}" for n in range(200, 212)]
GB = "+442071838750"
FIRST_SENT = format_datetime(datetime(2026, 11, 29, tzinfo=UTC), usegmt=True)


def body(sender: str, *recipients: str | dict[str, str], message: str = "hi") -> SendMessageRequest:
    return SendMessageRequest.model_validate(
        {
            "from": sender,
            "smsRecipients": [r if isinstance(r, dict) else {"to": r} for r in recipients],
            "message": message,
        }
    )


def with_id(to: str, request_id: str) -> dict[str, str]:
    return {"to": to, "repeatabilityRequestId": request_id, "repeatabilityFirstSent": FIRST_SENT}


def scenario(sender: str) -> list[SendMessageRequest]:
    """Every rule of a send, and requests that see what the earlier ones of the batch stored."""
    return [
        # one repeatability id twice in a request: the second answers as a repeat of the first
        body(sender, with_id(US[0], "r1"), with_id(US[1], "r1")),
        # an opted-out recipient, an invalid one, a bad first-sent date
        body(sender, US[2], "12345", {**with_id(US[3], "r2"), "repeatabilityFirstSent": "yesterday"}),
        # the id an earlier request of the batch stored
        body(sender, with_id(US[4], "r1")),
        # the country quota (US: 4 a minute) runs out half way
        body(sender, US[5], US[6], US[7], US[8]),
        # a sender the resource does not own
        body("+14255550999", US[9]),
        # the resource quota (10 a minute): 4 counted + 7 is too many
        body(sender, *US[:7]),
        # UCS-2 in three segments
        body(sender, US[10], message="é" * 140),
        # another country still has room; a refused id is not remembered
        body(sender, GB, with_id(US[11], "r3")),
        body(sender, with_id(US[11], "r3")),
    ]


def canonical(outcomes: list[sms_send.SendOutcome | AcsError], sender: str) -> list[Any]:
    """Outcomes with message ids numbered by first appearance, the sender's number masked."""
    labels: dict[str, str] = {}

    def label(message_id: str) -> str:
        return labels.setdefault(message_id, f"message{len(labels)}")

    shown: list[Any] = []
    for outcome in outcomes:
        if isinstance(outcome, AcsError):
            shown.append((outcome.status_code, outcome.code, outcome.message.replace(sender, "SENDER")))
            continue
        items = [
            {**item, "messageId": label(item["messageId"])} if "messageId" in item else item
            for item in outcome.items
        ]
        shown.append((items, [label(message_id) for message_id in outcome.queued]))
    return shown


def state_of(database: Database, resource_id: str) -> tuple[list[Any], list[Any]]:
    with database.read_session() as session:
        messages = session.execute(
            select(
                SmsMessage.to_number,
                SmsMessage.repeatability_request_id,
                SmsMessage.state,
                SmsMessage.segment_count,
                SmsMessage.data_coding,
            )
            .where(SmsMessage.resource_id == resource_id)
            .order_by(SmsMessage.to_number)
        ).all()
        counters = session.execute(
            select(SmsSendCounter.scope, func.sum(SmsSendCounter.sent))
            .where(SmsSendCounter.resource_id == resource_id)
            .group_by(SmsSendCounter.scope)
            .order_by(SmsSendCounter.scope)
        ).all()
    return [tuple(m) for m in messages], [tuple(c) for c in counters]


@pytest.fixture
def quota_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"sms_quota_per_resource_per_minute": 10, "sms_country_quotas": ["US=4", "GB=4"]}
    )


@pytest.fixture
def senders(database: Database) -> dict[str, str]:
    """Two resources, each with a sender that one recipient opted out of."""
    made: dict[str, str] = {}
    for name, sender in (("one-by-one", "+14255550100"), ("batch", "+14255550101")):
        with database.session() as session:
            resource_id = create_resource(session, name, f"https://{name}.test/").id
            session.add(SmsOptOut(from_number=sender, to_number=US[2]))
        give_number(database, resource_id, sender)
        made[name] = resource_id
    return made


def test_a_batch_answers_and_stores_as_one_request_after_another(
    database: Database, quota_settings: Settings, senders: dict[str, str]
) -> None:
    assert quota_settings.sms_country_quota("US") == 4
    now = datetime.now(UTC)
    one_by_one: list[sms_send.SendOutcome | AcsError] = []
    with database.session() as session:
        for request in scenario("+14255550100"):
            try:
                with session.begin_nested():
                    one_by_one.append(
                        sms_send.send(session, quota_settings, senders["one-by-one"], request, now)
                    )
            except AcsError as exc:
                one_by_one.append(exc)
    with database.session() as session:
        batch = sms_send.send_many(
            session, quota_settings, [(senders["batch"], r) for r in scenario("+14255550101")], now
        )
    expected = canonical(one_by_one, "+14255550100")
    assert canonical(batch, "+14255550101") == expected
    # the scenario does reach each rule
    codes = [entry[1] if isinstance(entry[0], int) else None for entry in expected]
    assert codes.count("InvalidFromPhoneNumber") == 1
    assert "TooManyRequests" in codes
    statuses = [
        item["httpStatusCode"] for entry in expected if isinstance(entry[0], list) for item in entry[0]
    ]
    assert statuses.count(429) == 4  # the US quota is spent by the fourth request
    assert statuses.count(400) == 3
    assert state_of(database, senders["batch"]) == state_of(database, senders["one-by-one"])


def test_a_refused_request_of_a_batch_writes_nothing(
    database: Database, quota_settings: Settings, senders: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    sender = "+14255550101"
    requests: list[Callable[[], SendMessageRequest]] = [
        lambda: body(sender, *US[:11]),  # 11 > 10: the whole request is refused
        lambda: body(sender, US[0]),
    ]
    with database.session() as session:
        outcomes = sms_send.send_many(
            session, quota_settings, [(senders["batch"], r()) for r in requests], now
        )
    assert isinstance(outcomes[0], AcsError)
    assert outcomes[0].status_code == 429
    assert isinstance(outcomes[1], sms_send.SendOutcome)
    assert outcomes[1].items[0]["httpStatusCode"] == 202
    messages, counters = state_of(database, senders["batch"])
    assert [m[0] for m in messages] == [US[0]]
    assert dict(counters) == {"*": 1, "US": 1}


def test_message_row_is_a_queued_sms_messages_row_due_now() -> None:
    """The row the send path and the worker's automatic reply both store."""
    now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    row = sms_send.message_row(
        "Outgoing_x",
        resource_id="r",
        sender=US[0],
        to=GB,
        country="GB",
        text="STOP received",
        segment_count=1,
        data_coding=0,
        report_timeout_seconds=3600,
        now=now,
    )
    assert set(row) <= set(SmsMessage.__table__.c.keys())
    assert (row["state"], row["next_attempt_at"], row["created_at"]) == ("queued", now, now)
    assert (row["from_number"], row["to_number"], row["country_code"]) == (US[0], GB, "GB")
    assert row["tag"] is None
    assert row["enable_delivery_report"] is False
    assert row["repeatability_request_id"] is None
