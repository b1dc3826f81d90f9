"""A calls table shaped like a gateway's after a while: ``rows`` calls made, nearly all ended, a
few live (tests/gateway/calls/test_plans.py, bench/call_history.py). Rows are made by
``INSERT ... SELECT generate_series``; the tables' autovacuum is off, so nothing analyses them
unless the caller does."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.core.db import Database
from gateway.resources.service import create_resource
from tests.support.plans import autovacuum_off

CALL_TABLES = ("calls", "call_legs")


def load_calls(database: Database, rows: int, process: str, live_every: int) -> str:
    """``rows`` calls with one leg each: nearly all ended, one in ``live_every`` connected (its leg
    active), a few ringing past their deadline, answering, dialing, and placing participants."""
    with database.session() as session:
        resource_id = create_resource(session, "call-history", "https://gateway.test/").id
    with database.engine.begin() as connection:
        autovacuum_off(connection, CALL_TABLES)
        params = {"n": rows, "resource": resource_id, "process": process, "live": live_every}
        connection.execute(
            sa.text(
                """
                INSERT INTO calls (
                    id, resource_id, direction, state, end_reason, server_call_id, correlation_id,
                    source_number, target_number, caller_display_name, sip_process, ring_deadline,
                    destinations, destination_index, answered, participants_sequence, created_at,
                    state_since, ended_at)
                SELECT 'call-' || g, :resource, 'inbound',
                    CASE WHEN g % :live = 0 THEN 'connected' WHEN g % :live = 1 THEN 'offered'
                         WHEN g % :live = 2 THEN 'answering' WHEN g % :live = 3 THEN 'dialing'
                         ELSE 'ended' END,
                    CASE WHEN g % :live > 3 THEN 'hung_up' END,
                    'server-' || g, 'corr-' || g, '+15550001', '+15550002', '',
                    CASE WHEN g % :live = 3 THEN '' ELSE :process END,
                    CASE WHEN g % :live = 1 THEN now() - interval '1 second' END,
                    '[]', 0, g % :live <> 1, 0, now() - (:n - g) * interval '1 millisecond',
                    now() - interval '1 hour',
                    CASE WHEN g % :live > 3 THEN now() END
                FROM generate_series(1, :n) AS g
                """
            ),
            params,
        )
        connection.execute(
            sa.text(
                """
                INSERT INTO call_legs (
                    id, call_id, sip_process, worker, number, sip_call_id, remote, active,
                    created_at, ended_at, role, state, invitation_id, invitation_deadline,
                    destination_index, muted)
                SELECT 'leg-' || g, 'call-' || g, :process, g % 100, '+15550001', 'sip-' || g,
                    '127.0.0.1', g % :live < 4,
                    now() - (:n - g) * interval '1 millisecond',
                    CASE WHEN g % :live >= 4 THEN now() END,
                    CASE WHEN g % :live = 0 THEN 'participant' ELSE 'call' END,
                    CASE WHEN g % :live = 0 THEN 'placing' WHEN g % :live >= 4 THEN 'ended' END,
                    CASE WHEN g % :live = 0 THEN 'invitation-' || g END,
                    CASE WHEN g % :live = 0 THEN now() - interval '1 second' END,
                    0, false
                FROM generate_series(1, :n) AS g
                """
            ),
            params,
        )
        connection.execute(
            sa.text(
                "INSERT INTO sip_processes (id, host, pid, started_at, heartbeat_at) "
                "VALUES (:process, 'host', 1, now(), now() - interval '1 hour')"
            ),
            params,
        )
    return resource_id
