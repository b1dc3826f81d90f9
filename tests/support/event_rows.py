"""Events, their deliveries and attempt log, shaped like a gateway's after a while
(tests/gateway/sms/test_plans.py, bench/event_purge.py): ``rows`` events to one webhook
subscription, 0.1% of them not yet dispatched (no delivery yet), 0.1% dispatched 40 days ago
(past the default retention, finished), 0.1% of deliveries pending, one in ten in a stored
batch, an attempt per delivery. Rows are made by ``INSERT ... SELECT generate_series``."""

from __future__ import annotations

import sqlalchemy as sa

EVENT_TABLES = ("event_outbox", "event_deliveries", "event_delivery_attempts")
SUBSCRIPTION_ID = "00000000-0000-0000-0000-0000000005ub"


def load_events(connection: sa.Connection, rows: int, resource_id: str) -> None:
    params = {"n": rows, "resource": resource_id, "sub": SUBSCRIPTION_ID}
    connection.execute(
        sa.text(
            """
            INSERT INTO event_subscriptions (
                id, resource_id, endpoint_url, kind, event_types, delivery_schema,
                max_delivery_attempts, event_ttl_minutes, max_events_per_batch,
                preferred_batch_size_kb, secret, status, validation_code, validation_attempts,
                created_at, updated_at)
            VALUES (:sub, :resource, 'https://hooks.example.test/', 'webhook', '[]',
                    'EventGridSchema', 30, 1440, 10, 64, 'sealed elsewhere', 'active', '', 0,
                    now(), now())
            """
        ),
        params,
    )
    connection.execute(
        sa.text(
            """
            INSERT INTO event_outbox (id, resource_id, event_type, subject, data, event_time,
                                      created_at, dispatched_at)
            SELECT 'ev-' || g, :resource, 'Microsoft.Communication.SMSDeliveryReportReceived',
                '/phonenumber/15550100', '{}', now(), now() - (:n - g) * interval '1 millisecond',
                CASE WHEN g % 1000 = 0 THEN NULL
                     WHEN g % 1000 = 5 THEN now() - interval '40 days' ELSE now() END
            FROM generate_series(1, :n) AS g
            """
        ),
        params,
    )
    connection.execute(
        sa.text(
            """
            INSERT INTO event_deliveries (id, event_id, subscription_id, resource_id, status,
                attempts, next_attempt_at, expires_at, created_at, replays, batch_id)
            SELECT 'delivery-' || g, 'ev-' || g, :sub, :resource,
                CASE WHEN g % 1000 = 1 THEN 'pending' ELSE 'delivered' END, 1,
                now() - interval '1 second', now() + interval '1 day', now(), 0,
                CASE WHEN g % 10 = 0 THEN 'batch-' || (g / 10) END
            FROM generate_series(1, :n) AS g WHERE g % 1000 <> 0
            """
        ),
        params,
    )
    connection.execute(
        sa.text(
            """
            INSERT INTO event_delivery_attempts (id, delivery_id, subscription_id, event_id,
                number, started_at, status_code, latency_ms, outcome)
            SELECT 'attempt-' || g, 'delivery-' || g, :sub, 'ev-' || g, 1, now(), 200, 3,
                'delivered'
            FROM generate_series(1, :n) AS g WHERE g % 1000 <> 0
            """
        ),
        params,
    )
