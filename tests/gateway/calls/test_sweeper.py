"""The calls' sweeper on the real database (SQLite and PostgreSQL): unplaced calls, calls of a
lost SIP process, lost answer/hang-up commands; and the placement claim it races with."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from gateway.calls import repository
from gateway.calls.lifecycle import CallState
from gateway.calls.models import Call, CallLeg, SipProcess
from gateway.calls.sweeper import CallSweeper, SweepBounds
from gateway.core.db import Database, new_uuid, utcnow
from gateway.events.models import OutboxEvent
from gateway.events.ssrf import Policy
from gateway.events.subscriptions import Limits, callback_subscription_id
from gateway.resources.models import Resource
from sip.worker.messages import Command, Hangup

BOUNDS = SweepBounds(timedelta(seconds=10), timedelta(seconds=10), timedelta(seconds=40))


class Sent:
    def __init__(self) -> None:
        self.commands: list[tuple[str, Command]] = []

    def __call__(self, process: str, command: Command) -> None:
        self.commands.append((process, command))


def public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]  # what app.example resolves to, without DNS


def resource(database: Database) -> tuple[str, str]:
    """A resource and a callback subscription of it."""
    with database.session() as session:
        row = Resource(
            name=f"sweep-{new_uuid()[:8]}",
            endpoint="https://sweep.example/",
            endpoint_host="sweep.example",
            primary_key="k1",
            secondary_key="k2",
        )
        session.add(row)
        session.flush()
        subscription_id = callback_subscription_id(
            session, row.id, "https://app.example/callbacks", Policy(), Limits(), resolver=public
        )
        return row.id, subscription_id


def add_call(
    database: Database,
    ids: tuple[str, str],
    state: CallState,
    *,
    process: str = "",
    direction: str = "outbound",
    answered: bool = False,
    since: datetime,
) -> tuple[str, str]:
    """A call in ``state`` since ``since`` with one active leg; (call id, leg id)."""
    call_id, leg_id = new_uuid(), new_uuid().replace("-", "")
    with database.session() as session:
        session.add(
            Call(
                id=call_id,
                resource_id=ids[0],
                direction=direction,
                state=state.value,
                server_call_id=f"server-{call_id}",
                correlation_id=new_uuid(),
                source_number="+14255550123",
                target_number="+15550001111",
                callback_subscription_id=ids[1],
                sip_process=process,
                answered=answered,
                destinations=[{"host": "192.0.2.1", "port": 5060}],
                created_at=since,
                state_since=since,
            )
        )
        session.flush()
        session.add(CallLeg(id=leg_id, call_id=call_id, sip_process=process, number="+15550001111"))
    return call_id, leg_id


def beat(database: Database, process: str, at: datetime) -> None:
    with database.session() as session:
        repository.beat(session, process, "host", 1, at)


def state_of(database: Database, call_id: str) -> tuple[str, str | None]:
    with database.read_session() as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call.state, call.end_reason


def callbacks_of(database: Database, call_id: str) -> list[tuple[str, dict[str, Any]]]:
    with database.read_session() as session:
        rows = session.scalars(
            select(OutboxEvent).where(OutboxEvent.subject == f"calling/callConnections/{call_id}")
        )
        return [(row.event_type, row.data) for row in rows]


def test_an_outbound_call_no_process_takes_fails_after_the_bound(database: Database) -> None:
    ids = resource(database)
    now = utcnow()
    old, _ = add_call(database, ids, CallState.DIALING, since=now - timedelta(seconds=11))
    young, _ = add_call(database, ids, CallState.DIALING, since=now - timedelta(seconds=5))
    sent = Sent()
    assert CallSweeper(database, sent, BOUNDS).run_once(now) == 1
    assert state_of(database, old) == ("ended", "notPlaced")
    assert state_of(database, young) == ("dialing", None)
    [(kind, data)] = callbacks_of(database, old)
    assert kind == "Microsoft.Communication.CreateCallFailed"
    assert data["resultInformation"]["code"] == 503
    assert data["resultInformation"]["subCode"] == 5300
    assert data["resultInformation"]["message"] == "No SIP process took the call within 10 s."
    assert sent.commands == []  # nobody holds it
    assert CallSweeper(database, sent, BOUNDS).run_once(now) == 0  # nothing twice


def test_the_calls_of_a_silent_or_stopped_process_end_and_a_live_ones_stay(database: Database) -> None:
    ids = resource(database)
    now = utcnow()
    beat(database, "alive", now - timedelta(seconds=2))
    beat(database, "silent", now - timedelta(seconds=12))
    beat(database, "stopped", now - timedelta(seconds=1))
    with database.session() as session:
        repository.stop_process(session, "stopped", now)
    since = now - timedelta(seconds=60)
    kept, _ = add_call(database, ids, CallState.CONNECTED, process="alive", answered=True, since=since)
    connected, _ = add_call(database, ids, CallState.CONNECTED, process="silent", answered=True, since=since)
    dialing, _ = add_call(database, ids, CallState.DIALING, process="stopped", since=since)
    offered, _ = add_call(
        database, ids, CallState.OFFERED, process="silent", direction="inbound", since=since
    )
    unknown, _ = add_call(
        database, ids, CallState.CONNECTED, process="never-beat", answered=True, since=since
    )
    sent = Sent()
    assert CallSweeper(database, sent, BOUNDS).run_once(now) == 4
    assert state_of(database, kept) == ("connected", None)
    for call_id in (connected, dialing, offered, unknown):
        assert state_of(database, call_id) == ("ended", "sipProcessLost")
    [(kind, data)] = callbacks_of(database, connected)
    assert kind == "Microsoft.Communication.CallDisconnected"
    result = data["resultInformation"]
    assert (result["code"], result["subCode"]) == (500, 5101)
    assert result["message"] == "The SIP process holding the call (silent) was lost: no heartbeat for 10 s."
    assert [kind for kind, _ in callbacks_of(database, dialing)] == [
        "Microsoft.Communication.CreateCallFailed"
    ]
    assert callbacks_of(database, offered) == []  # the app never took it
    assert sent.commands == []  # a lost process cannot be told anything
    with database.read_session() as session:
        legs = session.scalars(select(CallLeg).where(CallLeg.call_id == connected))
        assert [leg.active for leg in legs] == [False]


def test_a_lost_answer_or_hang_up_ends_the_call_and_tells_its_process_to_let_go(database: Database) -> None:
    ids = resource(database)
    now = utcnow()
    beat(database, "p1", now)
    stuck = now - timedelta(seconds=41)
    answering, answer_leg = add_call(
        database, ids, CallState.ANSWERING, process="p1", direction="inbound", since=stuck
    )
    hanging_up, _ = add_call(database, ids, CallState.DISCONNECTING, process="p1", answered=True, since=stuck)
    recent, _ = add_call(
        database,
        ids,
        CallState.ANSWERING,
        process="p1",
        direction="inbound",
        since=now - timedelta(seconds=5),
    )
    sent = Sent()
    assert CallSweeper(database, sent, BOUNDS).run_once(now) == 2
    assert state_of(database, answering) == ("ended", "commandTimeout")
    assert state_of(database, hanging_up) == ("ended", "commandTimeout")
    assert state_of(database, recent) == ("answering", None)
    [(kind, data)] = callbacks_of(database, answering)
    assert kind == "Microsoft.Communication.AnswerFailed"
    assert (data["resultInformation"]["code"], data["resultInformation"]["subCode"]) == (504, 5400)
    assert "answer" in data["resultInformation"]["message"]
    assert [kind for kind, _ in callbacks_of(database, hanging_up)] == [
        "Microsoft.Communication.CallDisconnected"
    ]
    assert ("p1", Hangup(answer_leg)) in sent.commands
    assert len(sent.commands) == 2


def test_a_placement_claim_loses_to_a_hang_up_or_the_place_timeout(database: Database) -> None:
    ids = resource(database)
    now = utcnow()
    _ended, ended_leg = add_call(database, ids, CallState.ENDED, since=now)
    dialing, leg = add_call(database, ids, CallState.DIALING, since=now)
    with database.session() as session:
        assert not repository.claim_placement(session, ended_leg, "p1")
    with database.session() as session:
        assert repository.claim_placement(session, leg, "p1")
    with database.session() as session:
        assert not repository.claim_placement(session, leg, "p2")  # p1 holds it
        assert repository.claim_placement(session, leg, "p1")  # its own next destination
    # another leg of a connected call its process holds (a participant) is placed; an unplaced
    # call that is no longer dialing is not
    _connected, connected_leg = add_call(database, ids, CallState.CONNECTED, process="p1", since=now)
    _hanging_up, hanging_up_leg = add_call(database, ids, CallState.DISCONNECTING, since=now)
    with database.session() as session:
        assert repository.claim_placement(session, connected_leg, "p1")
        assert not repository.claim_placement(session, connected_leg, "p2")
        assert not repository.claim_placement(session, hanging_up_leg, "p1")
    with database.read_session() as session:
        call = session.get(Call, dialing)
        assert call is not None
        assert call.sip_process == "p1"
    # a placed call is the SIP timers' to end, not the place bound's; an unplaced one times out
    # and its INVITE, taken late, is not placed
    late, late_leg = add_call(database, ids, CallState.DIALING, since=now)
    beat(database, "p1", now + timedelta(seconds=30))
    assert CallSweeper(database, Sent(), BOUNDS).run_once(now + timedelta(seconds=30)) == 1
    assert state_of(database, dialing) == ("dialing", None)
    assert state_of(database, late) == ("ended", "notPlaced")
    with database.session() as session:
        assert not repository.claim_placement(session, late_leg, "p1")


def test_a_silent_process_that_holds_nothing_is_forgotten_after_a_day(database: Database) -> None:
    now = utcnow()
    beat(database, "old", now - timedelta(days=2))
    beat(database, "new", now)
    CallSweeper(database, Sent(), BOUNDS).run_once(now)
    with database.read_session() as session:
        assert [row.id for row in session.scalars(select(SipProcess))] == ["new"]
