"""The SMPP worker process against the real node-smpp SMSC, as its tests (and the send jobs'
tests) drive it: connections and routes, a process on a thread, messages sent as POST /sms does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from gateway.core.celery_app import create_celery
from gateway.core.db import Database
from gateway.core.settings import Settings
from gateway.events.models import OutboxEvent
from gateway.sms import connections
from gateway.sms import send as sms_send
from gateway.sms.jobs import SendJobPublisher
from gateway.sms.models import (
    SmsMessage,
)
from gateway.sms.schemas import ConnectionCreate, RouteCreate, SendMessageRequest
from sms.worker.process import SmppProcess
from tests.support.smsc import SmscProcess
from tests.support.waiting import wait_until

SENDER = "+14255550100"
TO = "+14255550123"


class Harness:
    def __init__(self, database: Database, settings: Settings, resource_id: str) -> None:
        self.database = database
        self.settings = settings
        self.resource_id = resource_id
        self.process: SmppProcess | None = None
        self.thread: threading.Thread | None = None
        # POST /sms's hook: jobs published after the commit (here on the filesystem broker)
        self.jobs = SendJobPublisher(lambda: create_celery(settings), queue=settings.sms_job_queue)

    def connect(
        self, name: str, smsc: SmscProcess, prefix: str = "+", password: str | None = None, **extra: Any
    ) -> None:
        """A connection to ``smsc`` routing ``prefix``; fast reconnects unless ``extra`` says."""
        spec: dict[str, Any] = {"reconnect_backoff_initial": 0.05, "reconnect_backoff_max": 0.5} | extra
        with self.database.session() as session:
            connections.add_connection(
                session,
                ConnectionCreate(
                    name=name,
                    host=smsc.host,
                    port=smsc.port,
                    system_id=smsc.system_id,
                    password=smsc.password if password is None else password,
                    **spec,
                ),
            )
            connections.add_route(session, RouteCreate(prefix=prefix, connection=name))

    def start(self) -> SmppProcess:
        self.process = SmppProcess(self.settings, self.database)
        self.thread = threading.Thread(target=self.process.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.process is not None and self.process.bound(), what="a bind")
        return self.process

    def stop(self) -> None:
        self.jobs.close()
        if self.process is not None and self.thread is not None:
            self.process.stop()
            self.thread.join(timeout=15)
            assert not self.thread.is_alive()
            self.process = self.thread = None

    def send(
        self,
        text: str,
        to: str = TO,
        *,
        report: bool = True,
        timeout: int | None = None,
        validity: int | None = None,
    ) -> str:
        options: dict[str, Any] = {"enableDeliveryReport": report, "tag": "t"}
        if timeout is not None:
            options["deliveryReportTimeoutInSeconds"] = timeout
        if validity is not None:
            options["validityPeriodSeconds"] = validity
        request = SendMessageRequest.model_validate(
            {"from": SENDER, "smsRecipients": [{"to": to}], "message": text, "smsSendOptions": options}
        )
        with self.database.session() as session:
            outcome = sms_send.send(session, self.settings, self.resource_id, request, datetime.now(UTC))
        self.jobs.publish(outcome.queued)
        return outcome.queued[0]

    def message(self, message_id: str) -> SmsMessage:
        with self.database.session() as session:
            message = session.get(SmsMessage, message_id)
            assert message is not None
            return message

    def state(self, message_id: str) -> str:
        return self.message(message_id).state

    def events(self, event_type: str) -> list[OutboxEvent]:
        with self.database.session() as session:
            return list(session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type)))


def submits(smsc: SmscProcess) -> list[dict[str, Any]]:
    return smsc.pdus("submit_sm")
