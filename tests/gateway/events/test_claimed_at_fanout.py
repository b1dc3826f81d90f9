"""Deliveries claimed as they are fanned out (the dispatcher's own threads send them without a
claim of their own): what is claimed, that nobody else takes it meanwhile, that what is sent is
what a claim would have sent, and that a claim that ran out is given back, not used."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import select

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.events import fanout, sender
from gateway.events.lifecycle import DeliveryStatus
from gateway.events.models import Delivery, DeliveryAttempt
from gateway.events.runtime import Runtime
from gateway.events.sender import ClaimedWork

from .harness import make_tls, running_receiver
from .inprocess import activate, sms, subscribe


def _fan_out(rt: Runtime) -> fanout.Dispatched:
    with rt.database.session() as session:
        return fanout.dispatch_pending(session, utcnow(), rt.enqueue_lease, claim_for=rt.claim_for)


def test_only_deliveries_of_subscriptions_that_do_not_batch_are_claimed_at_fan_out(
    database: Database, settings: Settings, rt: Runtime, resource_id: str
) -> None:
    one_by_one = subscribe(database, settings, resource_id, "https://localhost:1/one")
    batching = subscribe(database, settings, resource_id, "https://localhost:1/many", max_events_per_batch=10)
    for sub in (one_by_one, batching):
        activate(database, sub.id)
    event_id = sms(database, resource_id)
    dispatched = _fan_out(rt)
    assert [row.subscription_id for row in dispatched.claimed] == [one_by_one.id]
    (row,) = dispatched.claimed
    assert (row.event_id, row.attempts, row.resource_name) == (event_id, 0, "app-one")
    assert row.data["message"] == "hello"
    assert [d.subscription_id for d in dispatched.deliveries] == [batching.id]
    with database.session() as session:
        claims = dict(session.execute(select(Delivery.subscription_id, Delivery.claimed_until)).all())
    assert claims[batching.id] is None
    claimed_until = claims[one_by_one.id]
    assert claimed_until is not None
    assert claimed_until > utcnow()
    # Held: a task of the broker's, or another node, finds nothing to send.
    assert sender.deliver(rt, [row.delivery_id]) == 0


def test_a_claimed_delivery_sends_what_a_claim_would_and_is_recorded(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path)) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        activate(database, sub.id)
        receiver.secrets = [sub.secret]  # the receiver checks the signature over the body
        event_id = sms(database, resource_id)
        dispatched = _fan_out(rt)
        work = ClaimedWork(dispatched.claimed, time.monotonic() + rt.claim_for.total_seconds())
        assert sender.deliver_claimed(rt, work) == 1
        assert receiver.event_ids() == [event_id]
        assert receiver.errors == []
        (received,) = receiver.received
        (element,) = json.loads(received.body)
        assert element["data"]["message"] == "hello"
        assert element["topic"].endswith("/communicationServices/app-one")
    with database.session() as session:
        delivery = session.scalars(select(Delivery)).one()
        assert (delivery.status, delivery.attempts, delivery.claimed_until) == (
            DeliveryStatus.DELIVERED,
            1,
            None,
        )
        attempts = session.scalars(select(DeliveryAttempt)).all()
        assert [(a.number, a.status_code) for a in attempts] == [(1, 200)]


def test_a_claim_that_ran_out_before_its_thread_took_it_is_given_back(
    database: Database, settings: Settings, rt: Runtime, resource_id: str, tmp_path: Path
) -> None:
    with running_receiver(make_tls(tmp_path)) as receiver:
        sub = subscribe(database, settings, resource_id, receiver.url)
        activate(database, sub.id)
        sms(database, resource_id)
        dispatched = _fan_out(rt)
        # Its thread came to it with less than a request's timeout left: another node may take
        # it as soon as the claim ends, so it must not be sent from here.
        assert sender.deliver_claimed(rt, ClaimedWork(dispatched.claimed, time.monotonic())) == 0
        assert receiver.hits == 0
    with database.session() as session:
        delivery = session.scalars(select(Delivery)).one()
        assert (delivery.status, delivery.claimed_until, delivery.enqueued_until) == (
            DeliveryStatus.PENDING,
            None,
            None,
        )
        due = fanout.due_deliveries(session, utcnow(), rt.enqueue_lease)
    assert [d.delivery_id for d in due] == [delivery.id]
