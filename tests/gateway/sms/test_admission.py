"""gateway.sms.admission: POST /sms requests stored in batches, each call answered as alone.

The API tests (test_api.py, the SDK end-to-end tests) go through the admission one request at a
time; here several calls are held back until they all wait, so that they share one batch, and
each must get the answer it would have had alone, with nothing of a refused call stored.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select

from gateway.core.auth import SignedCall
from gateway.core.db import Database, utcnow
from gateway.core.errors import AcsError
from gateway.core.hmac_auth import prepare, sign_request
from gateway.core.settings import Settings
from gateway.resources.keys import ResourceKeyIndex
from gateway.sms import send as sms_send
from gateway.sms.admission import Admitted, SendAdmission
from gateway.sms.jobs import SendJobPublisher
from gateway.sms.models import SmsMessage, SmsSendCounter

from .support import give_number

HOST = "testserver"
PATH = "/sms?api-version=2021-03-07"
SENDER_A = "+14255550100"
SENDER_B = "+14255550200"


class RecordingJobs:
    """Stands in for the Celery publisher: the ids handed over, in order."""

    def __init__(self) -> None:
        self.published: list[str] = []

    def publish(self, message_ids: list[str]) -> None:
        self.published.extend(message_ids)


def signed_call(key: str, payload: Any, *, raw: bytes | None = None) -> SignedCall:
    body = raw if raw is not None else json.dumps(payload).encode()
    now = datetime.now(UTC)
    headers = {**sign_request("POST", PATH, HOST, body, key, now), "host": HOST}
    path, _, query = PATH.partition("?")
    signed = prepare("POST", path, query, headers, body, now, timedelta(minutes=15))
    return SignedCall(signed, HOST, body)


def send_body(sender: str, *recipients: str) -> dict[str, Any]:
    return {"from": sender, "smsRecipients": [{"to": to} for to in recipients], "message": "hi"}


def stored_to(database: Database) -> list[str]:
    with database.read_session() as session:
        return sorted(session.scalars(select(SmsMessage.to_number)))


def held_in_one_batch(
    admission: SendAdmission, calls: list[SignedCall], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Admitted | BaseException], list[int]]:
    """Admit ``calls`` with the admission thread held on the first one until all the others
    wait: the first goes alone, the rest as one batch. Answers in order, and the batch sizes."""
    release = threading.Event()
    held_once = threading.Lock()
    resolve_many = admission.keys.resolve_many

    def resolve_held(*args: Any) -> list[str | None]:
        if held_once.acquire(blocking=False):
            assert release.wait(10)
        return resolve_many(*args)

    monkeypatch.setattr(admission.keys, "resolve_many", resolve_held)
    sizes: list[int] = []
    store = admission._store

    def counting_store(batch: list[Any]) -> None:
        sizes.append(len(batch))
        store(batch)

    monkeypatch.setattr(admission, "_store", counting_store)

    async def scenario() -> list[Admitted | BaseException]:
        first = asyncio.ensure_future(admission.admit(calls[0], utcnow()))
        await asyncio.sleep(0.05)  # the thread has taken the first call and is held
        rest = [asyncio.ensure_future(admission.admit(call, utcnow())) for call in calls[1:]]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        return asyncio.run(scenario()), sizes
    finally:
        admission.close()


@pytest.fixture
def admission_parts(
    database: Database, settings: Settings, resource_a: dict[str, str], resource_b: dict[str, str]
) -> tuple[SendAdmission, RecordingJobs, dict[str, str]]:
    give_number(database, resource_a["id"], SENDER_A)
    give_number(database, resource_b["id"], SENDER_B)
    limited = settings.model_copy(update={"sms_quota_per_resource_per_minute": 3})
    jobs = RecordingJobs()
    admission = SendAdmission(database, limited, ResourceKeyIndex(), cast(SendJobPublisher, jobs), threads=1)
    keys = {
        "a": resource_a["primaryKey"],
        "b": resource_b["primaryKey"],
        "a_id": resource_a["id"],
        "b_id": resource_b["id"],
    }
    return admission, jobs, keys


def test_each_call_of_a_batch_is_answered_as_if_alone(
    database: Database,
    admission_parts: tuple[SendAdmission, RecordingJobs, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admission, jobs, keys = admission_parts
    unknown_key = "c2VjcmV0LWtleS10aGF0LW5vYm9keS1oYXMtMTIzNDU2Nzg5MA=="
    calls = [
        signed_call(keys["b"], send_body(SENDER_B, "+14255550150")),  # held: goes alone
        signed_call(keys["a"], send_body(SENDER_A, "+14255550101")),  # 202 (1 of A's 3)
        signed_call(unknown_key, send_body(SENDER_A, "+14255550102")),  # 401
        signed_call(keys["a"], None, raw=b"{not json"),  # 400
        signed_call(keys["a"], send_body(SENDER_B, "+14255550103")),  # 400: B's number
        signed_call(keys["a"], send_body(SENDER_A, "+14255550104", "+14255550105")),  # 202 (3 of 3)
        signed_call(keys["a"], send_body(SENDER_A, "+14255550106")),  # 429: A's quota
        signed_call(keys["b"], send_body(SENDER_B, "+14255550151")),  # 202
    ]
    answers, sizes = held_in_one_batch(admission, calls, monkeypatch)
    assert sizes == [1, 7]

    def status(answer: Admitted | BaseException) -> int:
        if isinstance(answer, Admitted):
            return 202
        if isinstance(answer, RequestValidationError):
            return 400
        assert isinstance(answer, AcsError), answer
        return answer.status_code

    assert [status(answer) for answer in answers] == [202, 202, 401, 400, 400, 202, 429, 202]
    accepted = [answer for answer in answers if isinstance(answer, Admitted)]
    assert [answer.resource_id for answer in accepted] == [
        keys["b_id"],
        keys["a_id"],
        keys["a_id"],
        keys["b_id"],
    ]
    # nothing of the refused calls is stored; the accepted ones are, and their jobs published
    assert stored_to(database) == sorted(
        ["+14255550150", "+14255550101", "+14255550104", "+14255550105", "+14255550151"]
    )
    message_ids = [item["messageId"] for answer in accepted for item in answer.items]
    assert sorted(jobs.published) == sorted(message_ids)
    with database.read_session() as session:
        counted = session.scalar(
            select(func.sum(SmsSendCounter.sent)).where(
                SmsSendCounter.resource_id == keys["a_id"], SmsSendCounter.scope == "*"
            )
        )
    assert counted == 3  # the quota counts what was stored, not what was refused


def test_a_batch_of_good_calls_is_one_transaction(
    database: Database,
    admission_parts: tuple[SendAdmission, RecordingJobs, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admission, _jobs, keys = admission_parts
    admission.settings = admission.settings.model_copy(update={"sms_quota_per_resource_per_minute": 0})
    commits: list[int] = []
    session_factory = database.session

    def counting_session() -> Any:
        commits.append(1)
        return session_factory()

    monkeypatch.setattr(database, "session", counting_session)
    calls = [signed_call(keys["b"], send_body(SENDER_B, f"+1425555{n:04d}")) for n in range(6)]
    answers, sizes = held_in_one_batch(admission, calls, monkeypatch)
    assert sizes == [1, 5]
    assert all(isinstance(answer, Admitted) for answer in answers)
    assert len(commits) == 2  # one per batch: no second pass, no session per call
    assert len(stored_to(database)) == 6


@pytest.mark.parametrize("db_backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_database_error_in_the_batch_stores_each_call_again_alone(
    database: Database,
    admission_parts: tuple[SendAdmission, RecordingJobs, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A repeatability id stored by another process between the batch's read and its insert
    fails the whole insert: the batch is rolled back and each call sent again in a savepoint
    of its own, the one whose id was taken answered from the stored row. (PostgreSQL only: on
    SQLite the batch holds the write lock, so nothing stores in between.)"""
    admission, jobs, keys = admission_parts
    # no quotas: the batch would hold its counters locked, and the other process wait for them
    unlimited = {"sms_quota_per_resource_per_minute": 0, "sms_quota_per_country_per_minute": 0}
    admission.settings = admission.settings.model_copy(update=unlimited)
    first_sent = "Sun, 29 Nov 2026 10:00:00 GMT"

    def with_id(to: str, request_id: str) -> dict[str, Any]:
        recipient = {"to": to, "repeatabilityRequestId": request_id, "repeatabilityFirstSent": first_sent}
        return {"from": SENDER_A, "smsRecipients": [recipient], "message": "hi"}

    calls = [
        signed_call(keys["b"], send_body(SENDER_B, "+14255550150")),  # held: goes alone
        signed_call(keys["a"], with_id("+14255550101", "taken-meanwhile")),
        signed_call(keys["a"], with_id("+14255550102", "fresh")),
    ]
    read = sms_send._read
    other_process: list[str] = []

    def racing_read(session: Any, plans: list[Any], *args: Any) -> Any:
        found = read(session, plans, *args)
        if len(plans) == 2 and not other_process:
            # another process commits the first call's repeatability id after this batch's read
            other_process.append("")
            request = plans[0].request
            with database.session() as elsewhere:
                outcome = sms_send.send(elsewhere, admission.settings, keys["a_id"], request, utcnow())
            other_process[0] = outcome.items[0]["messageId"]
        return found

    monkeypatch.setattr(sms_send, "_read", racing_read)
    answers, sizes = held_in_one_batch(admission, calls, monkeypatch)
    assert sizes == [1, 2]
    assert all(isinstance(answer, Admitted) for answer in answers), answers
    taken, fresh = (cast(Admitted, answer).items[0] for answer in answers[1:])
    # answered from the row the other process stored: sent once
    assert (taken["messageId"], taken["repeatabilityResult"]) == (other_process[0], "accepted")
    assert (fresh["httpStatusCode"], fresh["repeatabilityResult"]) == (202, "accepted")
    assert stored_to(database) == ["+14255550101", "+14255550102", "+14255550150"]
    assert other_process[0] not in jobs.published  # its own process publishes it
