"""POST /sms's quotas, repeatability inside one request, and how many statements a send costs.

The quotas are counted in per-second rows (``sms_send_counters``); these tests hold them to
what docs/sms.md promises: exact across API processes (two engines with their own pools here,
as two processes would have), a sliding minute, and only stored messages counted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select

from gateway.core.db import Database
from gateway.core.errors import AcsError
from gateway.core.settings import Settings
from gateway.sms import quotas
from gateway.sms import send as sms_send
from gateway.sms.models import SmsMessage, SmsSendCounter
from gateway.sms.schemas import SendMessageRequest

from .support import give_number

SENDER = "+14255550100"
US = ["+14255550123", "+14255550124", "+14255550125"]
GB = ["+442071838750", "+442071838751"]


@pytest.fixture
def resource_id(database: Database, resource_a: dict[str, str]) -> str:
    give_number(database, resource_a["id"], SENDER)
    return resource_a["id"]


@pytest.fixture
def second_process(database_url: str) -> Iterator[Database]:
    """Another engine and pool on the same database: what a second API process has."""
    other = Database(database_url)
    yield other
    other.dispose()


def request(*recipients: str | dict[str, str]) -> SendMessageRequest:
    return SendMessageRequest.model_validate(
        {
            "from": SENDER,
            "smsRecipients": [r if isinstance(r, dict) else {"to": r} for r in recipients],
            "message": "hi",
        }
    )


def send(
    database: Database, settings: Settings, resource_id: str, body: SendMessageRequest, now: datetime
) -> list[dict[str, Any]]:
    with database.session() as session:
        return sms_send.send(session, settings, resource_id, body, now).items


def stored(database: Database) -> int:
    with database.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(SmsMessage)) or 0)


def concurrently(senders: list[Database], rounds: int, attempt: Any) -> tuple[int, int]:
    """Run ``attempt(database)`` from four threads per database, ``rounds`` times each, all
    released together every round; (answers, 429s) summed over all of them."""
    threads_per_database = 4
    barrier = threading.Barrier(threads_per_database * len(senders))
    totals = {"answers": 0, "refused": 0}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(database: Database) -> None:
        try:
            for _ in range(rounds):
                barrier.wait(30)
                answers, refused = attempt(database)
                with lock:
                    totals["answers"] += answers
                    totals["refused"] += refused
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=run, args=(database,))
        for database in senders
        for _ in range(threads_per_database)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    return totals["answers"], totals["refused"]


def test_resource_quota_is_exact_across_processes(
    database: Database, second_process: Database, settings: Settings, resource_id: str
) -> None:
    settings.sms_quota_per_resource_per_minute = 10
    settings.sms_quota_per_country_per_minute = 0
    now = datetime.now(UTC)

    def attempt(db: Database) -> tuple[int, int]:
        try:
            send(db, settings, resource_id, request(US[0]), now)
        except AcsError as exc:
            if exc.status_code != 429:
                raise
            return 0, 1
        return 1, 0

    accepted, refused = concurrently([database, second_process], 3, attempt)
    assert (accepted, refused) == (10, 14)
    assert stored(database) == 10


def test_country_quota_is_exact_across_processes(
    database: Database, second_process: Database, settings: Settings, resource_id: str
) -> None:
    settings.sms_quota_per_resource_per_minute = 0
    settings.sms_country_quotas = ["US=5"]
    now = datetime.now(UTC)

    def attempt(db: Database) -> tuple[int, int]:
        items = send(db, settings, resource_id, request(US[0], US[1], GB[0]), now)
        assert items[2]["httpStatusCode"] == 202  # GB has its own (default) quota
        codes = [item["httpStatusCode"] for item in items[:2]]
        return codes.count(202), codes.count(429)

    accepted, refused = concurrently([database, second_process], 2, attempt)
    assert (accepted, refused) == (5, 27)
    with database.read_session() as session:
        by_country = dict(
            session.execute(
                select(SmsMessage.country_code, func.count()).group_by(SmsMessage.country_code)
            ).all()
        )
    assert by_country == {"US": 5, "GB": 16}


def test_the_quota_minute_slides(database: Database, settings: Settings, resource_id: str) -> None:
    settings.sms_quota_per_resource_per_minute = 3
    start = datetime(2026, 11, 29, 12, 0, 0, 500000, tzinfo=UTC)
    assert [i["httpStatusCode"] for i in send(database, settings, resource_id, request(*US[:2]), start)] == [
        202,
        202,
    ]
    later = start + timedelta(seconds=30)
    assert send(database, settings, resource_id, request(US[2]), later)[0]["httpStatusCode"] == 202
    with pytest.raises(AcsError) as refused:
        send(database, settings, resource_id, request(GB[0]), start + timedelta(seconds=59))
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "60"}
    # A minute after the first two, only the one sent at +30 s is still counted.
    items = send(database, settings, resource_id, request(*GB), start + timedelta(seconds=60))
    assert [i["httpStatusCode"] for i in items] == [202, 202]
    with pytest.raises(AcsError):
        send(database, settings, resource_id, request(US[0]), start + timedelta(seconds=61))
    assert stored(database) == 5
    # Counters older than the window are dropped as new seconds open.
    with database.read_session() as session:
        seconds = set(session.scalars(select(SmsSendCounter.second)))
    assert int(start.timestamp()) not in seconds


def test_recipients_refused_by_a_country_quota_are_not_counted(
    database: Database, settings: Settings, resource_id: str
) -> None:
    settings.sms_quota_per_resource_per_minute = 4
    settings.sms_country_quotas = ["US=1"]
    now = datetime.now(UTC)
    items = send(database, settings, resource_id, request(*US), now)
    assert [i["httpStatusCode"] for i in items] == [202, 429, 429]
    assert "US" in items[1]["errorMessage"]
    # Only one message was stored, so the resource has room for three more this minute.
    items = send(database, settings, resource_id, request(*GB), now)
    assert [i["httpStatusCode"] for i in items] == [202, 202]
    assert send(database, settings, resource_id, request(GB[0]), now)[0]["httpStatusCode"] == 202
    with pytest.raises(AcsError):
        send(database, settings, resource_id, request(GB[1]), now)
    assert stored(database) == 4


def test_an_id_used_twice_in_one_request_is_stored_once(
    database: Database, settings: Settings, resource_id: str
) -> None:
    first_sent = format_datetime(datetime.now(UTC), usegmt=True)
    twice = [
        {"to": to, "repeatabilityRequestId": "one-id", "repeatabilityFirstSent": first_sent} for to in US[:2]
    ]
    items = send(database, settings, resource_id, request(*twice), datetime.now(UTC))
    assert items[0]["successful"]
    assert items[1] == {**items[0], "repeatabilityResult": "accepted"}
    assert stored(database) == 1


def test_a_request_of_invalid_recipients_only_is_answered(
    database: Database, settings: Settings, resource_id: str
) -> None:
    items = send(database, settings, resource_id, request("+1123", "12345"), datetime.now(UTC))
    assert [i["httpStatusCode"] for i in items] == [400, 400]
    assert stored(database) == 0


def test_a_batch_of_plain_sends_is_four_statements(
    database: Database, settings: Settings, resource_id: str
) -> None:
    """However many requests: one read (senders, opt-outs, quota counters), the current
    second's counters locked, the messages' insert, the counters' upsert. A fifth, the pruning
    of old counters, runs only when a batch opens a new second's counter."""
    now = datetime.now(UTC)
    send(database, settings, resource_id, request(US[0]), now)  # opens this second's counters
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite only: the transaction itself
            statements.append(statement.split(None, 1)[0].upper())

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        with database.session() as session:
            statements.clear()  # SQLite's BEGIN
            requests = [(resource_id, request(to)) for to in [*US[1:], GB[0]]]
            outcomes = sms_send.send_many(session, settings, requests, now)
            sent = list(statements)
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert [o.items[0]["httpStatusCode"] for o in outcomes if isinstance(o, sms_send.SendOutcome)] == [
        202
    ] * 3
    assert sent == ["SELECT", "INSERT", "INSERT", "INSERT"]


# The quota rules alone (gateway/sms/quotas.py), without a database ------------------------------


def test_a_request_counts_in_the_resource_scope_then_each_limited_country_in_order(
    settings: Settings,
) -> None:
    limited = settings.model_copy(
        update={
            "sms_quota_per_resource_per_minute": 10,
            "sms_quota_per_country_per_minute": 7,
            "sms_country_quotas": ["GB=5", "US=0"],
        }
    )
    limits = quotas.country_limits(limited, ["US", "GB", "FR"])
    assert limits == {"US": 0, "GB": 5, "FR": 7}
    assert quotas.counted_scopes(limited, limits) == [quotas.ALL_DESTINATIONS, "FR", "GB"]
    unlimited = settings.model_copy(update={"sms_quota_per_resource_per_minute": 0})
    assert quotas.counted_scopes(unlimited, {"GB": 0}) == []


def test_the_resource_quota_refuses_the_request_that_would_pass_it(settings: Settings) -> None:
    limited = settings.model_copy(update={"sms_quota_per_resource_per_minute": 10})
    quotas.check_resource_quota(limited, 7, 3)  # exactly at the quota: accepted
    with pytest.raises(AcsError) as refused:
        quotas.check_resource_quota(limited, 8, 3)
    assert (refused.value.status_code, refused.value.headers) == (429, {"Retry-After": "60"})
    unlimited = settings.model_copy(update={"sms_quota_per_resource_per_minute": 0})
    quotas.check_resource_quota(unlimited, 10**6, 10**6)


def test_country_room_is_what_is_left_of_each_limited_country() -> None:
    counted = {"GB": 4, "US": 9, "FR": 0}
    room = quotas.country_room({"GB": 5, "US": 5, "FR": 0}, counted.__getitem__)
    assert room == {"GB": 1, "US": 0}


def test_the_resources_whose_first_counter_of_the_second_is_new_are_the_opened_ones() -> None:
    current = {("a", "*"): 0, ("a", "GB"): 3, ("b", "*"): 2, ("b", "GB"): 0, ("c", "US"): 0}
    assert quotas.opened_resources(current) == ["a", "c"]
