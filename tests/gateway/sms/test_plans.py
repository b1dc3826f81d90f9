"""The plans of the SMS path's hot statements, and the events dispatcher's claims, on PostgreSQL.

Each statement is run as the gateway runs it (inside a transaction that is rolled back), its SQL
and parameters are caught at the driver, and ``EXPLAIN`` shows the plan: at 10,000 and 1,000,000
rows, before the tables were ever analysed (autovacuum is off for them: a development machine
may have it off altogether, issue 15) and after ``ANALYZE``. Every plan must reach the big
tables through the expected index, never by a sequential scan. Rows are made by
``INSERT ... SELECT generate_series``, shaped like a gateway that has run for a while: nearly
every message delivered, a few queued, some submitted and waiting for their receipts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from sqlalchemy import Table
from sqlalchemy.orm import Session

from gateway.core.bulk import postgres_update
from gateway.core.db import Database, utcnow
from gateway.events import repository as events_repository
from gateway.events.lifecycle import DeliveryChange, DeliveryStatus
from gateway.events.models import Delivery
from gateway.resources.service import create_resource
from gateway.sms.models import SmsMessage, SmsSegment, SmsState
from gateway.sms.repository import receipt_targets
from gateway.sms.repository import send as send_repository
from gateway.sms.repository import worker as worker_repository
from tests.support.event_rows import EVENT_TABLES, load_events
from tests.support.plans import analyse, analysed_rows, autovacuum_off, check, explain, failures_of
from tests.support.postgres import Postgres
from tests.support.secrets_keys import TEST_SECRETS_KEYS

pytestmark = pytest.mark.postgres

BIG_TABLES = ("sms_messages", "sms_segments", *EVENT_TABLES)
CONNECTION_ID = "00000000-0000-0000-0000-00000000c0de"


@dataclass(frozen=True)
class Loaded:
    database: Database
    rows: int
    resource_id: str


def _load(database: Database, rows: int) -> str:
    """``rows`` messages (one segment each), outbox events and deliveries; 0.1% of messages
    queued and 1% submitted, 0.1% of events undispatched and of deliveries pending."""
    with database.session() as session:
        resource_id = create_resource(session, "plans", "https://gateway.test/").id
    with database.engine.begin() as connection:
        autovacuum_off(connection, BIG_TABLES)
        params = {"n": rows, "resource": resource_id, "conn": CONNECTION_ID}
        connection.execute(
            sa.text(
                """
                INSERT INTO sms_messages (
                    id, resource_id, from_number, to_number, country_code, text, segment_count,
                    data_coding, enable_delivery_report, delivery_report_timeout_seconds,
                    repeatability_request_id, state, attempts, in_doubt, possible_duplicates,
                    next_attempt_at, waiting_for_bind, connection_id, tried_connections,
                    concat_reference, created_at, submitted_at, segments_succeeded, segments_failed)
                SELECT 'Outgoing_' || lpad(g::text, 12, '0'), :resource, '+15550100',
                    '+1555' || lpad((g % 10000000)::text, 7, '0'), 'US', 'hello', 1, 0, true, 3600,
                    'req-' || g,
                    CASE WHEN g % 1000 = 0 THEN 'queued' WHEN g % 100 = 1 THEN 'submitted'
                         ELSE 'delivered' END,
                    CASE WHEN g % 1000 = 0 THEN 0 ELSE 1 END, false, 0,
                    now() - (:n - g) * interval '1 millisecond', false, :conn, '', 0,
                    now() - (:n - g) * interval '1 millisecond', now(), 0, 0
                FROM generate_series(1, :n) AS g
                """
            ),
            params,
        )
        connection.execute(
            sa.text(
                """
                INSERT INTO sms_segments (message_id, sequence, connection_id, smsc_message_id,
                                          submit_state, submit_status)
                SELECT 'Outgoing_' || lpad(g::text, 12, '0'), 1, :conn, 'smsc-' || g, 'accepted', 0
                FROM generate_series(1, :n) AS g WHERE g % 1000 <> 0
                """
            ),
            params,
        )
        load_events(connection, rows, resource_id)
    return resource_id


@pytest.fixture(scope="module", params=[10_000, 1_000_000], ids=["10k", "1M"])
def loaded(request: pytest.FixtureRequest, postgres: Postgres) -> Iterator[Loaded]:
    database = Database(postgres.new_database())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRUNKLINE_SECRETS_KEYS", TEST_SECRETS_KEYS)  # the resource's keys are sealed
        resource_id = _load(database, request.param)
    yield Loaded(database, request.param, resource_id)
    database.dispose()


# The hot statements -------------------------------------------------------------------------------


def _now() -> Any:
    return utcnow()


def _spread(rows: int, most: int) -> list[int]:
    """Up to ``most`` row numbers spread over the table, one per thousand rows at most (ten of
    10k): without statistics the planner takes each key for 0.5% of the table, and more of them
    for a share of a small table where a scan is cheaper."""
    count = min(most, rows // 1000)
    return list(range(1, rows, rows // count))[:count]


def repeatability_lookup(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        statement = send_repository.FIND_REPEATED[True]
        ids = [f"req-{n}" for n in (7, loaded.rows // 2, loaded.rows - 3)]
        return session.execute(statement, {"resources": [loaded.resource_id], "request_ids": ids}).all()

    return run, "uq_sms_messages_repeatability_request_id"


def claim_by_id(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        now = _now()
        ids = [f"Outgoing_{n:012d}" for n in range(1000, loaded.rows + 1, max(1000, loaded.rows // 50))]
        return worker_repository.claim_rows(
            session,
            postgres=True,
            by_id=True,
            parameters={"ids": ids, "now": now, "until": now + timedelta(seconds=30), "room": 50},
            busy=set(),
        )

    return run, "pk_sms_messages"


def claim_by_reconciler(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        now = _now()
        parameters = {
            "now": now,
            "until": now + timedelta(seconds=30),
            "room": 50,
            "grace_before": now - timedelta(seconds=5),
        }
        return worker_repository.claim_rows(
            session, postgres=True, by_id=False, parameters=parameters, busy=set()
        )

    return run, "ix_sms_messages_due"


def receipt_lookup(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        # 50 receipts: a writer batch at a few thousand receipts a second (up to WRITE_BATCH, 500,
        # when it falls behind)
        keys = [(CONNECTION_ID, f"smsc-{n}") for n in _spread(loaded.rows, 50)]
        return receipt_targets.segment_targets(session, keys, postgres=True)

    return run, "ix_sms_segments_smsc_id"


def receipt_messages(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    """The receipt lookup's second statement must find the messages by primary key."""
    run, _ = receipt_lookup(loaded)
    return run, "pk_sms_messages"


def pending_receipts_lookup(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        segments = [
            worker_repository.NewSegment(f"Outgoing_{n:012d}", 1, CONNECTION_ID, f"smsc-{n}", 0)
            for n in range(1, 200)
        ]
        return worker_repository.messages_with_pending_receipts(session, segments)

    # A small table (receipts that came before their submit_sm_resp): empty, it is scanned.
    return run, ""


def accepted_parts_lookup(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        return worker_repository.accepted_sequences(session, [f"Outgoing_{n:012d}" for n in range(1, 6)])

    return run, "pk_sms_segments"


def reconciler_stale_queue(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        return worker_repository.reports_overdue(session, _now(), postgres=True)

    return run, "ix_sms_messages_dlr_deadline|ix_sms_messages_due"


def reconciler_expired_queue(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        now = _now()
        return worker_repository.queued_since_before(session, now - timedelta(hours=1), now, postgres=True)

    return run, "ix_sms_messages_due"


def outbox_claim(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        return events_repository.take_undispatched(session, 500, _now())

    return run, "ix_event_outbox_pending"


def due_deliveries_claim(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    def run(session: Session) -> object:
        return events_repository.take_due_deliveries(session, _now(), timedelta(seconds=30), 500)

    return run, "ix_event_deliveries_due"


def deliveries_claim(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    """The events worker's claim: the deliveries it was handed, with their events, and the rest
    of the batches some of them belong to (writer_updates' "events: claim marked" is the UPDATE
    that follows)."""

    def run(session: Session) -> object:
        ids = [f"delivery-{n}" for n in _spread(loaded.rows, 50)]
        ids += [f"delivery-{n}" for n in range(10, 200, 10)][: loaded.rows // 1000]  # in stored batches
        return events_repository.lock_claimable(session, ids, _now())

    return run, "pk_event_deliveries"


def recorded_outcomes(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    """A batch's outcome: the events worker's write after each attempt."""

    def run(session: Session) -> object:
        done = DeliveryChange(DeliveryStatus.DELIVERED, 1, _now(), _now(), None, 200, None, None)
        events_repository.update_deliveries(session, dict.fromkeys(_delivery_ids(loaded.rows), done))
        return None

    return run, "pk_event_deliveries"


def purge(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    """The dispatcher's purge of finished events past their retention (0.1% here): its select and
    its delete (deliveries and attempts go by cascade, through their event_id and delivery_id
    indexes: the plans of the foreign keys' own queries are not shown by EXPLAIN)."""

    # A batch of 1,000 is a tenth of the 10k table, where a scan is the cheaper plan.
    limit = min(1000, loaded.rows // 100)

    def run(session: Session) -> object:
        return events_repository.purge_finished(session, _now() - timedelta(days=30), limit)

    return run, "ix_event_outbox_pending"


def queue_depth(loaded: Loaded) -> tuple[Callable[[Session], object], str]:
    """The events queue depth (the Prometheus gauge at every scrape, `trunkline status`), and the
    dead letters `trunkline status` counts."""

    def run(session: Session) -> object:
        return events_repository.queue_depth(session), events_repository.dead_lettered_count(session)

    return run, "ix_event_outbox_pending"


HOT = {
    "repeatability lookup (POST /sms)": repeatability_lookup,
    "claim of a job's queued messages": claim_by_id,
    "claim by the reconciler": claim_by_reconciler,
    "receipt lookup: segments by smsc_message_id = ANY": receipt_lookup,
    "receipt lookup: the messages": receipt_messages,
    "pending receipts of new segments": pending_receipts_lookup,
    "accepted parts of claimed messages": accepted_parts_lookup,
    "overdue reports": reconciler_stale_queue,
    "queued past the report window": reconciler_expired_queue,
    "events: outbox claim": outbox_claim,
    "events: due deliveries": due_deliveries_claim,
    "events: delivery claim with the events (and whole batches)": deliveries_claim,
    "events: a batch's outcome": recorded_outcomes,
    "events: purge of finished events": purge,
    "events: queue depth": queue_depth,
}

# The writer's bulk UPDATEs (gateway.core.bulk.update_rows: one statement per batch, run on
# psycopg's cursor, not SQLAlchemy's, so they are explained from the SQL it builds), for 50 rows.
_MESSAGES = cast(Table, SmsMessage.__table__)
_SEGMENTS = cast(Table, SmsSegment.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)


def _delivery_ids(rows: int) -> list[str]:
    """A hundred deliveries spread over the table (ten of 10k): a worker's batch."""
    return [f"delivery-{n}" for n in _spread(rows, 100)]


def _writer_ids(rows: int) -> list[str]:
    """50 queued messages' ids (0.1% are): a batch of first submits, spread over the table."""
    return [f"Outgoing_{n:012d}" for n in range(1000, rows + 1, max(1000, rows // 50))][:50]


def writer_updates(rows: int) -> dict[str, tuple[str, list[Any], str]]:
    now = utcnow()
    ids = _writer_ids(rows)
    return {
        "writer: queued -> submitted": (
            *postgres_update(
                _MESSAGES,
                [{"id": message_id, "segment_count": 1, "data_coding": 0} for message_id in ids],
                where={"state": SmsState.QUEUED.value},
                constants={
                    "state": "submitted",
                    "submitted_at": now,
                    "dlr_deadline": now,
                    "claimed_until": None,
                },
            ),
            "pk_sms_messages",
        ),
        "receipts: submitted -> delivered": (
            *postgres_update(
                _MESSAGES,
                [{"id": message_id} for message_id in ids],
                where={"state": SmsState.SUBMITTED.value},
                constants={"state": "delivered", "delivery_status": "Delivered", "finished_at": now},
            ),
            "pk_sms_messages",
        ),
        "events: claim marked, with batch ids": (
            *postgres_update(
                _DELIVERIES,
                [{"id": delivery_id, "batch_id": "batch-new"} for delivery_id in _delivery_ids(rows)],
                constants={"claimed_until": now, "enqueued_until": now},
            ),
            "pk_event_deliveries",
        ),
        "receipts: first part's receipt": (
            *postgres_update(
                _SEGMENTS,
                [{"message_id": message_id, "receipt_state": 2, "receipt_error": None} for message_id in ids],
                key="message_id",
                where={"sequence": 1},
                constants={"receipt_at": now},
            ),
            "pk_sms_segments",
        ),
    }


@pytest.mark.parametrize("statistics", ["never analysed", "analysed"])
def test_hot_statements_use_their_index(loaded: Loaded, statistics: str) -> None:
    engine = loaded.database.engine
    if statistics == "analysed":
        analyse(engine)
    else:
        assert analysed_rows(engine, "sms_messages") == 0, "this database was analysed already (autovacuum?)"
    failures = failures_of(engine, {name: make(loaded) for name, make in HOT.items()}, BIG_TABLES)
    for name, (sql, parameters, index) in writer_updates(loaded.rows).items():
        for generic in (False, True):
            try:
                check([(sql, explain(engine, sql, parameters, generic=generic))], index, BIG_TABLES)
            except AssertionError as exc:
                failures.append(f"{name} ({'generic' if generic else 'one-off'} plan): {exc}")
    assert not failures, f"{loaded.rows} rows, {statistics}:\n" + "\n\n".join(failures)
