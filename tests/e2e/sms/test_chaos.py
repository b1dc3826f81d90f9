"""Chaos with real processes: every accepted message reaches a final state; duplicates are counted.

A duplicate is a segment the SMSC received more than once. The only way one can happen is a
submit in flight when a link drops or a process dies; the SMPP process counts every segment it
resubmits after such an unknown outcome in ``possible_duplicates``, so the count reported must
cover what the SMSC actually saw.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from gateway.sms.models import SmsMessage
from tests.gateway.events.harness import wait_until

from .conftest import JOB_GRACE_SECONDS, SENDER, SmsStack
from .test_sms_sdk import recipients, reports_for


def send_batch(stack: SmsStack, count: int, start: int, text: str, *, report: bool = False) -> set[str]:
    client = stack.sms_client()
    ids: set[str] = set()
    numbers = recipients(count, start)
    for offset in range(0, count, 100):
        results = client.send(
            from_=SENDER, to=numbers[offset : offset + 100], message=text, enable_delivery_report=report
        )
        assert all(r.successful for r in results)
        ids.update(r.message_id for r in results if r.message_id)
    return ids


def duplicates_seen(pdus: list[dict[str, Any]], text_hex: str) -> tuple[set[str], int]:
    """Destinations that got the batch's text, and how many extra copies the SMSC received."""
    mine = [p["destination_addr"] for p in pdus if p["short_message_hex"] == text_hex]
    counts = Counter(mine)
    return set(counts), sum(n - 1 for n in counts.values())


def reported_duplicates(stack: SmsStack, ids: set[str]) -> int:
    with stack.database.session() as session:
        return int(
            session.scalar(select(func.sum(SmsMessage.possible_duplicates)).where(SmsMessage.id.in_(ids)))
            or 0
        )


def states(stack: SmsStack, ids: set[str]) -> Counter[str]:
    with stack.database.session() as session:
        return Counter(session.scalars(select(SmsMessage.state).where(SmsMessage.id.in_(ids))))


def check_outcome(stack: SmsStack, ids: set[str], start: int, text: str) -> int:
    final = wait_until(
        lambda: (s := states(stack, ids)) and not (s["queued"] or s["submitted"]) and s,
        90,
        what="every message final",
    )
    assert sum(final.values()) == len(ids)
    destinations, extra = duplicates_seen(stack.smsc.pdus("submit_sm"), text.encode().hex())
    assert destinations == {n[1:] for n in recipients(len(ids), start)}  # none lost
    reported = reported_duplicates(stack, ids)
    print(f"{len(ids)} messages: {dict(final)}; SMSC saw {extra} duplicate segments, {reported} counted")
    assert extra <= reported, f"the SMSC saw {extra} duplicates, {reported} were counted"
    stats = stack.cli("smpp", "stats")  # what the operator sees
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["possibleDuplicates"] >= reported
    return reported


def test_smsc_drops_the_connection_mid_batch(stack: SmsStack) -> None:
    stack.smsc.configure(drop_after_submits=60, submit_latency_ms=20)
    text = "drop test"
    ids = send_batch(stack, 200, 3000, text)
    check_outcome(stack, ids, 3000, text)
    assert stack.smsc.counter("connections") >= 1  # it reconnected (counters were reset before)
    assert states(stack, ids)["delivered"] >= 150  # receipts for the resubmitted ones come too


def test_smpp_process_sigkilled_mid_batch(stack: SmsStack) -> None:
    stack.smsc.configure(submit_latency_ms=50)
    text = "kill test"
    ids = send_batch(stack, 200, 4000, text)
    wait_until(lambda: len(stack.smsc.pdus("submit_sm")) >= 40, 20, what="submits under way")
    stack.kill("smpp")
    time.sleep(0.5)
    stack.start("smpp", "smpp")
    check_outcome(stack, ids, 4000, text)


def submit_delays(stack: SmsStack, ids: set[str]) -> list[float]:
    """Seconds from acceptance to the SMSC's submit_sm_resp of each message."""
    with stack.database.session() as session:
        rows = session.execute(
            select(SmsMessage.created_at, SmsMessage.submitted_at).where(SmsMessage.id.in_(ids))
        )
        return [(submitted - created).total_seconds() for created, submitted in rows if submitted]


def test_redis_restart_loses_nothing(stack: SmsStack) -> None:
    text = "redis test"
    stack.redis.stop()
    # Accepting SMS does not need Redis: the rows are committed, their send jobs are lost.
    ids = send_batch(stack, 100, 5000, text, report=True)
    time.sleep(1)
    stack.redis.start()  # empty: the private server keeps nothing
    check_outcome(stack, ids, 5000, text)
    # The reconciler sent them, and only once their job had had the grace period to come.
    assert min(submit_delays(stack, ids)) >= JOB_GRACE_SECONDS - 1
    # every delivery-report event still reaches the receiver once Redis is back
    wait_until(lambda: len(reports_for(stack, ids)) == len(ids), 60, what="every report event")
    # The API and `trunkline smpp` are back on Redis: new messages go through their jobs again.
    text = "after redis"
    ids = send_batch(stack, 50, 5200, text)
    check_outcome(stack, ids, 5200, text)
    assert max(submit_delays(stack, ids)) < JOB_GRACE_SECONDS - 1
