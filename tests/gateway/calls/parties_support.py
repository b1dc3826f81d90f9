"""A connected call, the operator's trunks and a recording of what goes to the SIP process, for
the tests of participant operations: the API (HMAC, TestClient) on one side, the SIP process's
controller driven with worker events on the other, the outbox in between."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from fastapi import FastAPI
from sqlalchemy import select

from gateway.calls import service
from gateway.calls.models import Call, CallLeg
from gateway.calls.schemas import RouteSpec, TrunkSpec
from gateway.core.db import Database, utcnow
from gateway.events import subscriptions
from gateway.events.models import OutboxEvent
from gateway.events.ssrf import Policy
from gateway.identity.tokens import Keyring
from gateway.numbers.models import Carrier
from sip.control.controller import CallController
from sip.worker.main import SipRuntime
from sip.worker.messages import CallState, CallStateChanged, Command, Event
from sip.worker.pool import WorkerEvent

PROCESS = "sip-test-1"
APP_NUMBER = "+14255550123"  # the resource's, inbound+outbound
CALLER = "+15557770000"  # the PSTN caller of the call
OTHER = "+15557770001"  # a number to add
CALLING = "api-version=2026-03-12"


@dataclass
class Recorder:
    """Stands in for the API's CommandPublisher."""

    sent: list[tuple[str, Command]] = field(default_factory=list)

    def send(self, process: str, command: Command) -> None:
        self.sent.append((process, command))


@dataclass
class FakeRuntime:
    """Stands in for the pool: records what the controller sends its workers."""

    sent: list[Command] = field(default_factory=list)

    def send(self, command: Command) -> int:
        self.sent.append(command)
        return 0


def operator_trunks(database: Database, refer: bool = False) -> None:
    """Two trunks on 127.0.0.1 for every number: carrier-a first, carrier-b on failover."""
    with database.session() as session:
        if session.scalar(select(Carrier).where(Carrier.name == "voice-test")) is None:
            session.add(Carrier(name="voice-test", kind="sip"))
            session.flush()
        service.add_trunk(
            session,
            TrunkSpec(name="carrier-a", carrier="voice-test", host="127.0.0.1", port=5099, refer=refer),
        )
        service.add_trunk(
            session, TrunkSpec(name="carrier-b", carrier="voice-test", host="127.0.0.2", port=5098)
        )
        service.add_route(session, RouteSpec(prefix="+", trunks=["carrier-a", "carrier-b"]))


def connected_call(database: Database, resource_id: str, state: str = "connected") -> tuple[str, str]:
    """An inbound call from CALLER to APP_NUMBER, answered, on PROCESS: (call id, its leg id)."""
    with database.session() as session:
        subscription_id = subscriptions.callback_subscription_id(
            session,
            resource_id,
            "https://app.example/callbacks",
            Policy(),
            subscriptions.Limits(),
            resolver=lambda host, port: ["93.184.216.34"],
        )
        call = Call(
            resource_id=resource_id,
            direction="inbound",
            state=state,
            server_call_id="server-call",
            correlation_id="correlation",
            source_number=CALLER,
            target_number=APP_NUMBER,
            callback_uri="https://app.example/callbacks",
            callback_subscription_id=subscription_id,
            sip_process=PROCESS,
            answered=state == "connected",
            connected_at=utcnow(),
        )
        session.add(call)
        session.flush()
        leg = CallLeg(
            id=f"leg-{uuid.uuid4().hex[:12]}",
            call_id=call.id,
            sip_process=PROCESS,
            worker=0,
            number=CALLER,
            remote="127.0.0.1:5099",
        )
        session.add(leg)
        return call.id, leg.id


def controller(database: Database) -> CallController:
    return CallController(database, cast(Keyring, None), PROCESS, timedelta(seconds=30), "https://issuer")


def worker_event(ctl: CallController, runtime: FakeRuntime, event: Event) -> None:
    ctl.on_event(WorkerEvent(0, event), cast(SipRuntime, runtime))


def leg_state(
    ctl: CallController, runtime: FakeRuntime, leg_id: str, state: CallState, status: int = 0
) -> None:
    worker_event(ctl, runtime, CallStateChanged(leg_id, state, status))


def callbacks(database: Database) -> list[tuple[str, dict[str, Any]]]:
    """(type minus the prefix, data) of every callback in the outbox, in order."""
    with database.read_session() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.created_at, OutboxEvent.event_time))
        return [(row.event_type.rsplit(".", 1)[-1], dict(row.data)) for row in rows]


def legs_of(database: Database, call_id: str) -> list[CallLeg]:
    with database.read_session() as session:
        rows = list(
            session.scalars(select(CallLeg).where(CallLeg.call_id == call_id).order_by(CallLeg.created_at))
        )
        session.expunge_all()
        return rows


def use_recorder(app: FastAPI) -> Recorder:
    recorder = Recorder()
    app.state.call_commands = recorder
    return recorder
