"""``POST /sms`` in batches: the requests waiting are authenticated and stored together, in one
transaction per batch (group commit).

A request's own work in the database is small (the key's read, the sender and quota read, an
insert, a counter upsert), so what it cost as its own request was mostly fixed: a session, a
transaction and its commit, a second session for the key, and two hops through the thread pool
(with 40 threads contending for the GIL). Here a request's coroutine checks the signature's form
(no I/O), hands the call to a few admission threads and awaits the answer; each thread takes
every call waiting (up to ``max_calls``) and:

1. resolves each call's key (``ResourceKeyIndex.resolve_many``: one read of the stored keys,
   in the batch's transaction), then parses its body: 401 or 400 answer that call alone, as
   the per-request path would;
2. stores the rest with ``send.send_many``: a handful of statements for the whole batch
   (one read of the senders, opt-outs and quota counters, one of the repeatability ids, one
   insert, one counter upsert), each request decided as if sent after the ones before it; a
   request refused with an ACS error (a 429 past the resource's quota, a sender the resource
   does not own) writes nothing;
3. commits once, hands the queued ids to the send-job publisher, and answers every call.

A database error (a repeatability id another transaction stored meanwhile, a deadlock) fails
the whole statement, so the transaction is rolled back and the batch stored again with each
call in a savepoint of its own (``send.send``): one call's failure never touches another's
rows, and nothing of a failed call is kept.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gateway.core.auth import SignedCall, no_key_verifies
from gateway.core.bodies import parse_model
from gateway.core.db import Database
from gateway.core.errors import AcsError
from gateway.core.settings import Settings
from gateway.resources.keys import ResourceKeyIndex
from gateway.sms import send
from gateway.sms.jobs import SendJobPublisher
from gateway.sms.schemas import SendMessageRequest

log = logging.getLogger("trunkline.sms.admission")


@dataclass(frozen=True)
class Admitted:
    resource_id: str
    items: list[dict[str, Any]]


@dataclass
class _Call:
    signed: SignedCall
    now: datetime
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Admitted]
    resource_id: str = ""
    request: SendMessageRequest | None = None
    outcome: send.SendOutcome | BaseException | None = field(default=None, repr=False)


class SendAdmission:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        keys: ResourceKeyIndex,
        jobs: SendJobPublisher,
        *,
        threads: int = 2,
        max_calls: int = 32,
    ) -> None:
        self.database = database
        self.settings = settings
        self.keys = keys
        self.jobs = jobs
        self.thread_count = threads
        self.max_calls = max_calls
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pid = os.getpid()

    async def admit(self, signed: SignedCall, now: datetime) -> Admitted:
        """Authenticate and store one request; its resource and per-recipient items, or raise
        the error to answer (``AcsError``, ``RequestValidationError``, a database error)."""
        loop = asyncio.get_running_loop()
        call = _Call(signed, now, loop, loop.create_future())
        self._ensure_threads()
        self._calls.put(call)
        return await call.future

    def close(self, timeout: float = 5.0) -> None:
        """Answer what is queued, then stop the threads."""
        with self._lock:
            threads = list(self._threads) if self._pid == os.getpid() else []
            self._threads = []  # a later call starts them again (an app served twice, in tests)
            for _ in threads:
                self._calls.put(None)
        for thread in threads:
            thread.join(timeout)

    def _ensure_threads(self) -> None:
        with self._lock:
            # A forked child (an API worker) inherits the object but not the threads.
            if self._threads and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._threads = [
                threading.Thread(target=self._run, name=f"sms-admission-{n}", daemon=True)
                for n in range(self.thread_count)
            ]
            for thread in self._threads:
                thread.start()

    def _run(self) -> None:
        while True:
            first = self._calls.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_calls:
                try:
                    call = self._calls.get_nowait()
                except queue.Empty:
                    break
                if call is None:  # closing: finish this batch, then stop
                    self._calls.put(None)
                    break
                batch.append(call)
            try:
                self._store(batch)
            except Exception as exc:  # the database failed the whole batch: each call answers it
                log.exception("storing a batch of %d send requests failed", len(batch))
                for call in batch:
                    if call.outcome is None or isinstance(call.outcome, send.SendOutcome):
                        call.outcome = exc
            try:
                self._answer(batch)
            except Exception:  # never let the thread die: the next callers would wait for ever
                log.exception("answering a batch of %d send requests failed", len(batch))

    def _store(self, batch: list[_Call]) -> None:
        # One time for the batch: its requests are counted, and their ids made, as of now.
        now = max(call.now for call in batch)
        try:
            with self.database.session() as session:
                sending = self._authenticate(session, batch)
                requests = [(call.resource_id, call.request) for call in sending if call.request is not None]
                outcomes = send.send_many(session, self.settings, requests, now)
                for call, outcome in zip(sending, outcomes, strict=True):
                    call.outcome = outcome
        except DBAPIError:
            # a repeatability id stored meanwhile by another batch or process, or a deadlock
            # between two batches (one of them is cancelled): nothing of the batch was kept
            pass
        else:
            self._publish(batch)
            return
        for call in batch:
            if call.request is not None:  # answered again below; a 401 or 400 stays
                call.outcome = None
        with self.database.session() as session:
            for call in self._authenticate(session, batch):
                assert call.request is not None
                try:
                    with session.begin_nested():
                        call.outcome = send.send(session, self.settings, call.resource_id, call.request, now)
                except (AcsError, DBAPIError) as exc:  # this call's answer (a 500 for DBAPIError)
                    call.outcome = exc
        self._publish(batch)

    def _authenticate(self, session: Session, batch: list[_Call]) -> list[_Call]:
        """Resolve and parse each call not answered yet; those to send, ordered by resource."""
        unresolved = [call for call in batch if call.outcome is None and call.request is None]
        # one read of the stored keys for the whole batch
        owners = self.keys.resolve_many(
            session, [(call.signed.signed, call.signed.host) for call in unresolved]
        )
        for call, owner in zip(unresolved, owners, strict=True):
            if owner is None:
                call.outcome = no_key_verifies()
                continue
            call.resource_id = owner
            try:
                call.request = parse_model(call.signed.body, SendMessageRequest)
            except (AcsError, RequestValidationError) as exc:
                call.outcome = exc
        sending = [call for call in batch if call.outcome is None and call.request is not None]
        # The same order in every batch: a resource's counters are locked (until the commit)
        # in one order everywhere, so two batches never wait for each other in a cycle.
        sending.sort(key=lambda call: call.resource_id)
        return sending

    def _publish(self, batch: list[_Call]) -> None:
        # committed: now the send jobs may name the rows
        queued = [
            message_id
            for call in batch
            if isinstance(call.outcome, send.SendOutcome)
            for message_id in call.outcome.queued
        ]
        self.jobs.publish(queued)

    @staticmethod
    def _answer(batch: list[_Call]) -> None:
        for call in batch:
            outcome = call.outcome
            try:
                if isinstance(outcome, send.SendOutcome):
                    admitted = Admitted(call.resource_id, outcome.items)
                    call.loop.call_soon_threadsafe(_resolve, call.future, admitted)
                else:
                    error = outcome if outcome is not None else RuntimeError("send request not answered")
                    call.loop.call_soon_threadsafe(_fail, call.future, error)
            except RuntimeError:  # its event loop is closed: nobody waits for the answer
                pass


def _resolve(future: asyncio.Future[Admitted], value: Admitted) -> None:
    if not future.done():  # the client may have gone (the request task was cancelled)
        future.set_result(value)


def _fail(future: asyncio.Future[Admitted], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
