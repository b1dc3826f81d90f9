"""The writer's two paths come to the same rows and events for the same inputs.

The bulk path (first submits whose every part was accepted, final receipts finishing one-part
messages: a few statements for a batch) and the one-by-one path (the ORM, an item per
transaction: what the writer falls back to when a batch fails) are given the same claimed
messages, the same submit_sm_resps and the same receipts, batch by batch; the messages, segments,
pending receipts and outbox events they leave must be equal. The inputs cover one-part and
multi-part messages, a refused part (with and without a connection to fail over to), throttling,
an unanswered submit, no route, an intermediate then a final receipt, receipts before their resp
(in an earlier batch and earlier in the same batch), two receipts for one id in a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy import inspect as sa_inspect

from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.events.models import OutboxEvent
from gateway.resources.service import create_resource
from gateway.sms import lifecycle
from gateway.sms.models import SmsMessage, SmsPendingReceipt, SmsSegment
from gateway.sms.repository import worker as repository
from sms.bind_types import SubmitOutcome, SubmitResult
from sms.pdu import ESME_ROK, DeliverSm
from sms.receipts import MessageIdFormat, MessageState, format_receipt_text
from sms.segmentation import ConcatenationMode, ReferenceAllocator
from sms.status import ESME_RINVDSTADR, ESME_RTHROTTLED
from sms.worker.claims import Claimed, Claimer
from sms.worker.inbound import InboundRecorder
from sms.worker.routing import ConnectionView, RoutingTable
from sms.worker.work import Inbound, NoRoute, PartResult, SubmitBatch, Work
from sms.worker.writer import Writer

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SENDER = "+14255550100"
ONE, TWO = "conn-1", "conn-2"
ROUTING = RoutingTable.build(
    [ConnectionView(c, c, 1, 1, 1, 1, "auto") for c in (ONE, TWO)],
    [("+1", ONE), ("+1", TWO), ("+44", ONE)],  # +44 has no connection to fail over to
)
ONE_PART, TWO_PARTS, THREE_PARTS = "hello", "y" * 200, "x" * 400

# message -> (recipient, text, reports asked)
MESSAGES = {
    "A": ("+14255550001", ONE_PART, True),  # accepted, delivered: both in bulk
    "B": ("+14255550002", THREE_PARTS, True),  # three parts; intermediate, then one part fails
    "C": ("+447700900003", TWO_PARTS, True),  # a part refused, no failover: failed
    "D": ("+14255550004", TWO_PARTS, True),  # a part refused, fails over to conn-2
    "E": ("+14255550005", ONE_PART, True),  # its receipt a batch before its resp
    "F": ("+14255550006", ONE_PART, True),  # its receipt before its resp in the same batch
    "G": ("+14255550007", ONE_PART, True),  # throttled: retried
    "H": ("+14255550008", ONE_PART, True),  # no resp: in doubt, retried
    "I": ("+14255550009", ONE_PART, True),  # no route: failed
    "J": ("+14255550010", ONE_PART, True),  # no bound connection: retried
    "K": ("+14255550011", ONE_PART, True),  # intermediate and final receipts in one batch
    "L": ("+14255550012", ONE_PART, False),  # delivered, no report asked
    "M": ("+14255550013", ONE_PART, True),  # rejected by the carrier: failed in bulk
    "N": ("+14255550014", ONE_PART, True),  # an intermediate receipt only: still submitted
    "P": ("+14255550015", "plain " * 20, True),  # one GSM part, sent as two UCS-2 ones: re-coded
}
EXPECTED_STATES = {
    "A": "delivered",
    "B": "failed",
    "C": "failed",
    "D": "queued",
    "E": "delivered",
    "F": "delivered",
    "G": "queued",
    "H": "queued",
    "I": "failed",
    "J": "queued",
    "K": "delivered",
    "L": "delivered",
    "M": "failed",
    "N": "submitted",
    "P": "delivered",
}


REFUSED = SubmitResult(SubmitOutcome.FAILED, status=ESME_RINVDSTADR)


def accepted(smsc_id: str) -> SubmitResult:
    return SubmitResult(SubmitOutcome.ACCEPTED, message_id=smsc_id, status=ESME_ROK)


def receipt(smsc_id: str, state: MessageState, error: str = "000", connection: str = ONE) -> Work:
    text = format_receipt_text(message_id=smsc_id, state=state, error=error)
    pdu = DeliverSm(
        "deliver_sm", 1, "14255550001", 1, 1, SENDER[1:], 1, 1, esm_class=0x04, data_coding=0,
        short_message=text.encode(),
    )  # fmt: skip
    return Work(Inbound(connection, pdu))


def submitted(message: Claimed, connection: str, *results: SubmitResult, recoded: bool = False) -> Work:
    """The outcomes of a submit; ``recoded``: sent in UCS-2 (a UCS-2-only connection), so in as
    many parts as given."""
    return Work(
        SubmitBatch(
            message.id,
            connection,
            [PartResult(sequence, result) for sequence, result in enumerate(results, start=1)],
            len(results) if recoded else message.segment_count,
            8 if recoded else message.data_coding,
            first_attempt=message.first_attempt,
            report_timeout_seconds=message.report_timeout_seconds,
        )
    )


def batches(claimed: dict[str, Claimed]) -> list[list[Work]]:
    c = claimed
    return [
        [
            submitted(c["A"], ONE, accepted("a1")),
            submitted(c["B"], ONE, accepted("b1"), accepted("b2"), accepted("b3")),
            submitted(
                c["C"], ONE, accepted("c1"), SubmitResult(SubmitOutcome.FAILED, status=ESME_RINVDSTADR)
            ),
            submitted(
                c["D"], ONE, accepted("d1"), SubmitResult(SubmitOutcome.FAILED, status=ESME_RINVDSTADR)
            ),
            receipt("e1", MessageState.DELIVERED),
            receipt("f1", MessageState.DELIVERED),
            submitted(c["F"], ONE, accepted("f1")),
            submitted(c["G"], ONE, SubmitResult(SubmitOutcome.RETRY, status=ESME_RTHROTTLED)),
            submitted(c["H"], ONE, SubmitResult(SubmitOutcome.UNKNOWN, detail="no resp")),
            Work(NoRoute(c["I"].id, "No SMPP route for destination +14255550009.", permanent=True)),
            Work(NoRoute(c["J"].id, "No SMPP connection of the route is bound.", permanent=False)),
            submitted(c["K"], ONE, accepted("k1")),
            submitted(c["L"], ONE, accepted("l1")),
            submitted(c["M"], ONE, accepted("m1")),
            submitted(c["N"], ONE, accepted("n1")),
            submitted(c["P"], ONE, accepted("p1"), accepted("p2"), recoded=True),
        ],
        [
            receipt("a1", MessageState.DELIVERED),
            receipt("b1", MessageState.ENROUTE),
            receipt("c1", MessageState.DELIVERED),
            submitted(c["E"], ONE, accepted("e1")),
            receipt("k1", MessageState.ENROUTE),
            receipt("k1", MessageState.DELIVERED),
            receipt("l1", MessageState.DELIVERED),
            receipt("m1", MessageState.REJECTED, "027"),
            receipt("n1", MessageState.ENROUTE),
            receipt("p1", MessageState.DELIVERED),
            receipt("p2", MessageState.DELIVERED),
        ],
        [
            receipt("b1", MessageState.DELIVERED),
            receipt("b2", MessageState.DELIVERED),
            receipt("b3", MessageState.UNDELIVERABLE, "034"),
        ],
    ]


def queue_messages(database: Database, resource_id: str) -> None:
    rows = []
    for name, (to, text, reports) in MESSAGES.items():
        parts = {TWO_PARTS: 2, THREE_PARTS: 3}.get(text, 1)
        rows.append(
            {
                "id": f"Outgoing_{name}",
                "resource_id": resource_id,
                "from_number": SENDER,
                "to_number": to,
                "country_code": "US",
                "text": text,
                "segment_count": parts,
                "data_coding": 0,
                "tag": f"tag-{name}",
                "enable_delivery_report": reports,
                "delivery_report_timeout_seconds": 600,
                **lifecycle.created(NOW),
            }
        )
    with database.session() as session:
        session.execute(insert(SmsMessage), rows)


def claim(database: Database, settings: Settings) -> dict[str, Claimed]:
    claimer = Claimer(database, settings, ReferenceAllocator(ConcatenationMode.UDH_8BIT_REFERENCE, start=0))
    ids = [f"Outgoing_{name}" for name in MESSAGES]
    claimed = claimer.claim(100, ids, set(), NOW)
    assert len(claimed) == len(MESSAGES)
    return {message.id.removeprefix("Outgoing_"): message for message in claimed}


def columns(row: Any) -> dict[str, Any]:
    return {attribute.key: getattr(row, attribute.key) for attribute in sa_inspect(row).mapper.column_attrs}


def snapshot(database: Database) -> dict[str, Any]:
    with database.read_session() as session:
        segments = [columns(s) for s in session.scalars(select(SmsSegment))]
        pending = [columns(p) for p in session.scalars(select(SmsPendingReceipt))]
        events = [columns(e) for e in session.scalars(select(OutboxEvent))]
        return {
            "messages": {m.id: columns(m) for m in session.scalars(select(SmsMessage))},
            "segments": sorted(segments, key=lambda s: (s["message_id"], s["sequence"])),
            # a pending receipt's id is a new uuid; an event's created_at the time it was written
            "pending": sorted(
                ({k: v for k, v in p.items() if k != "id"} for p in pending),
                key=lambda p: (p["connection_id"], p["smsc_message_id"], p["state"]),
            ),
            "events": sorted(({k: v for k, v in e.items() if k != "created_at"} for e in events), key=str),
        }


def forget_messages(database: Database) -> None:
    with database.session() as session:
        for model in (OutboxEvent, SmsPendingReceipt, SmsSegment, SmsMessage):
            session.execute(delete(model))


class BulkCalls:
    """Counts the bulk path's writes, to know which path recorded what."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("insert_accepted_segments", "record_first_part_receipts"):
            monkeypatch.setattr(repository, name, self.counting(name, getattr(repository, name)))

    def counting(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return function(*args, **kwargs)

        return counted


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database.url, sms_claim_lease_seconds=60)


@pytest.fixture
def resource_id(database: Database) -> str:
    with database.session() as session:
        return create_resource(session, "paths", "https://paths.test/").id


def run(
    database: Database,
    settings: Settings,
    resource_id: str,
    write: Callable[[Writer, Sequence[Work]], None],
) -> dict[str, Any]:
    forget_messages(database)
    queue_messages(database, resource_id)
    writer = Writer(
        database, settings, lambda: ROUTING, InboundRecorder(settings), clock=lambda: NOW, jitter=lambda: 0.0
    )
    for batch in batches(claim(database, settings)):
        write(writer, batch)
    return snapshot(database)


def test_bulk_and_one_by_one_leave_the_same_rows_and_events(
    database: Database, settings: Settings, resource_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk_calls = BulkCalls(monkeypatch)
    in_bulk = run(database, settings, resource_id, Writer.write_in_bulk)
    # batch 1: the first submits, F's receipt after its resp; batch 2: A's, L's and M's receipts
    assert bulk_calls.calls == [
        "insert_accepted_segments",
        "record_first_part_receipts",
        "record_first_part_receipts",
    ]
    bulk_calls.calls.clear()
    one_by_one = run(database, settings, resource_id, Writer.write_one_by_one)
    assert bulk_calls.calls == []

    messages = one_by_one["messages"]
    states = {message_id.removeprefix("Outgoing_"): m["state"] for message_id, m in messages.items()}
    assert states == EXPECTED_STATES
    statuses = {
        message_id.removeprefix("Outgoing_"): m["delivery_status"]
        for message_id, m in messages.items()
        if m["delivery_status"] is not None
    }
    assert statuses == {
        **dict.fromkeys("AEFKLP", "Delivered"),
        **dict.fromkeys("BCIM", "Failed"),
    }
    reported = {e["id"].removeprefix("Outgoing_"): e["data"]["deliveryStatus"] for e in one_by_one["events"]}
    assert reported == {name: status for name, status in statuses.items() if name != "L"}
    assert one_by_one["pending"] == []
    assert messages["Outgoing_H"]["in_doubt"] is True
    assert messages["Outgoing_D"]["tried_connections"] == ONE
    assert (messages["Outgoing_P"]["segment_count"], messages["Outgoing_P"]["data_coding"]) == (2, 8)

    assert in_bulk["messages"] == one_by_one["messages"]
    assert in_bulk["segments"] == one_by_one["segments"]
    assert in_bulk["pending"] == one_by_one["pending"]
    assert in_bulk["events"] == one_by_one["events"]


@pytest.mark.parametrize("write", [Writer.write_in_bulk, Writer.write_one_by_one])
def test_a_receipt_before_its_resp_matches_in_another_notation(
    database: Database,
    settings: Settings,
    resource_id: str,
    write: Callable[[Writer, Sequence[Work]], None],
) -> None:
    # resps in hex, receipts in decimal with leading zeros, as some SMSCs write them
    connection = ConnectionView(
        ONE,
        ONE,
        1,
        1,
        1,
        1,
        "auto",
        resp_id_format=MessageIdFormat.HEX,
        receipt_id_format=MessageIdFormat.DECIMAL,
    )
    routing = RoutingTable.build([connection], [("+1", ONE)])
    queue_messages(database, resource_id)
    writer = Writer(
        database, settings, lambda: routing, InboundRecorder(settings), clock=lambda: NOW, jitter=lambda: 0.0
    )
    message = claim(database, settings)["A"]
    write(writer, [receipt("0012", MessageState.DELIVERED)])
    write(writer, [submitted(message, ONE, accepted("0000000C"))])
    state = snapshot(database)
    assert state["messages"][message.id]["state"] == "delivered"  # at once, not by the sweep 30 s later
    assert state["pending"] == []
