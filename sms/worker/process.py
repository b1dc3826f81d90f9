"""The SMPP worker process: one persistent bind per enabled connection, fed by Celery send jobs.

The state of every message is its ``sms_messages`` row. ``POST /sms`` commits each accepted
message as a queued row in the request's transaction, then publishes a send job naming it
(gateway/sms/jobs.py, Celery on Redis). This process consumes those jobs and claims their rows
by id (claims.py: only queued, due rows not under a live claim, so a duplicate job claims
nothing; SKIP LOCKED on PostgreSQL, so several processes share the work), submits their parts on
a bind chosen by destination prefix (routing.py, submitter.py), and records the outcomes
(writer.py, receipts.py, inbound.py; the state changes are gateway/sms/lifecycle.py's). A job is
acknowledged only after its claim committed. The broker may lose jobs (a Redis restart, a
publish while it was away): the reconciler, a slower poll of the table, claims due retries and
first attempts whose job has not come within ``sms_job_grace_seconds``. A process that dies
mid-batch leaves claims that expire after ``sms_claim_lease_seconds`` and are taken again.

Exactly once where it can be had: a part whose submit_sm_resp (SMSC message id) was recorded is
never submitted again, and a part resubmitted after an unknown outcome is counted in
``possible_duplicates``. Receipts and MO messages are persisted before their deliver_sm_resp
goes out (the bind's ``ack_after_callbacks``, with a deferred callback): the writer answers each
once the batch holding it has committed.

Threads: this one claims and submits; the writer records (and sweeps); each bind has its own; the
job consumer waits on the broker.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable

from gateway.core.db import Database, utcnow
from gateway.core.settings import Settings
from gateway.sms.jobs import SendJobConsumer
from gateway.sms.models import SmppConnection
from gateway.sms.repository import worker as repository
from sms.bind import SmppBind
from sms.bind_dispatch import DeferredDeliverCallback, DeliverAnswer
from sms.bind_types import BindConfig, BindMode, BindState
from sms.pdu import DeliverSm
from sms.receipts import MessageIdFormat
from sms.segmentation import ConcatenationMode, ReferenceAllocator
from sms.worker.claims import Claimer, JobTickets
from sms.worker.inbound import InboundRecorder
from sms.worker.routing import ConnectionView, RoutingTable
from sms.worker.status import StatusPublisher
from sms.worker.submitter import Submitter
from sms.worker.sweeper import Sweeper
from sms.worker.work import Inbound, NoRoute, WakeUp, Work
from sms.worker.writer import Writer

log = logging.getLogger("trunkline.smpp.process")

CONFIG_RELOAD_SECONDS = 2.0


class SmppProcess:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        bind_factory: Callable[[BindConfig], SmppBind] = SmppBind,
    ) -> None:
        self.settings = settings
        self.database = database
        self.bind_factory = bind_factory
        self.binds: dict[str, SmppBind] = {}
        self.routing = RoutingTable()
        self.stop_event = threading.Event()
        self.wakeup = threading.Event()  # set when claimed work finishes (room for more) or on stop
        self.in_flight: set[str] = set()
        self.in_flight_lock = threading.Lock()
        self.inbound = InboundRecorder(settings)
        self.writer = Writer(database, settings, lambda: self.routing, self.inbound, released=self._released)
        self.sweeper = Sweeper(database, settings, self.inbound)
        self.submitter = Submitter(self.writer.hand_over)
        references = ReferenceAllocator(
            ConcatenationMode.UDH_8BIT_REFERENCE,
            start=random.randrange(256),  # noqa: S311 - not a secret
        )
        self.claimer = Claimer(database, settings, references)
        # Send jobs from the broker, waiting to be claimed by id (see gateway/sms/jobs.py).
        self.jobs = JobTickets()
        self.job_consumer: SendJobConsumer | None = None
        self.next_reconcile = 0.0
        self._writer_thread: threading.Thread | None = None
        self.status = StatusPublisher(database, lambda: self.binds)
        self.bound_connections: set[str] = set()

    # running --------------------------------------------------------------------------------------

    def run(self) -> None:
        restored = self.inbound.restore_parts(self.database)
        if restored:
            log.info("restored %d parts of inbound concatenated messages", restored)
        self._writer_thread = self.writer.start(self.sweep, self._drained)
        self.start_job_consumer()
        next_reload = 0.0
        status_started = False
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= next_reload:
                    self.reload()
                    next_reload = now + CONFIG_RELOAD_SECONDS
                    if not status_started:  # once the binds exist
                        self.status.start()
                        status_started = True
                self.release_on_bind()
                # Cleared before claiming, so a job or a finished batch arriving while we claim
                # is not forgotten: the wait below then returns at once.
                self.wakeup.clear()
                try:
                    claimed = self.claim_and_submit()
                except Exception:
                    # the database away, most likely: claims expire, nothing is lost; try again
                    log.exception("claiming failed")
                    self.stop_event.wait(1.0)
                    continue
                if claimed == 0:
                    # until a job comes, a batch finishes (room again) or the reconciler is due;
                    # never 0, or a process with no room would spin
                    self.wakeup.wait(max(0.05, self.next_reconcile - time.monotonic()))
        finally:
            self.shutdown()

    def stop(self) -> None:
        self.stop_event.set()
        self.wakeup.set()

    def sweep(self) -> None:
        self.sweeper.sweep()

    def _drained(self) -> bool:
        """The writer may end: the process stops and the binds have drained into it."""
        return self.stop_event.is_set() and not self.binds

    def _released(self, message_id: str) -> None:
        with self.in_flight_lock:
            self.in_flight.discard(message_id)
        self.wakeup.set()

    def start_job_consumer(self) -> None:
        from gateway.core.celery_app import create_celery

        self.job_consumer = SendJobConsumer(
            create_celery(self.settings), self.on_jobs, queue=self.settings.sms_job_queue
        )
        self.job_consumer.start()

    def on_jobs(self, message_ids: list[str]) -> bool:
        """The job consumer's callback: True once every id was claimed or found not claimable
        (the job is then acknowledged), False if the process stops first (the job goes back)."""
        ticket = self.jobs.add(message_ids)
        self.wakeup.set()
        while not ticket.done.wait(0.2):
            if self.stop_event.is_set():
                return False
        return True

    def shutdown(self) -> None:
        self.stop_event.set()  # also when run() ends on an error: a waiting job must give up
        if self.job_consumer is not None:
            self.job_consumer.stop()  # no new jobs; one in progress is given back to the queue
        for bind in list(self.binds.values()):
            bind.stop()  # drains the window: outcomes still reach the writer
        self.binds.clear()
        self.status.stop()
        self.writer.hand_over(Work(WakeUp()))
        if self._writer_thread is not None:
            self._writer_thread.join(timeout=10)

    # configuration --------------------------------------------------------------------------------

    def reload(self) -> None:
        with self.database.read_session() as session:
            rows = repository.enabled_connections(session)
            routes = [(route.prefix, route.connection_id) for route in repository.routes_by_priority(session)]
        wanted = {row.id: row for row in rows}
        for connection_id in list(self.binds):
            if connection_id not in wanted:
                self.binds.pop(connection_id).stop()
        views = [
            ConnectionView(
                row.id,
                row.name,
                row.source_ton,
                row.source_npi,
                row.dest_ton,
                row.dest_npi,
                row.default_data_coding,
                MessageIdFormat(row.resp_id_format),
                MessageIdFormat(row.receipt_id_format),
            )
            for row in rows
        ]
        self.routing = RoutingTable.build(views, routes)
        for connection_id, row in wanted.items():
            if connection_id not in self.binds:
                bind = self.bind_factory(self.bind_config(row))
                bind.on_deliver_deferred(self._deliver_callback(connection_id))
                bind.start()
                self.binds[connection_id] = bind
                log.info("smpp connection %s started (%s:%s)", row.name, row.host, row.port)

    def bind_config(self, row: SmppConnection) -> BindConfig:
        lease = self.settings.sms_claim_lease_seconds
        return BindConfig(
            name=row.name,
            host=row.host,
            port=row.port,
            system_id=row.system_id,
            password=row.password,
            system_type=row.system_type,
            mode=BindMode(row.bind_mode),
            tls=ssl.create_default_context() if row.tls else None,
            source_ton=row.source_ton,
            source_npi=row.source_npi,
            dest_ton=row.dest_ton,
            dest_npi=row.dest_npi,
            window_size=row.window_size,
            max_submits_per_second=row.max_submits_per_second,
            enquire_link_interval=row.enquire_link_interval,
            reconnect_backoff_initial=row.reconnect_backoff_initial,
            reconnect_backoff_max=row.reconnect_backoff_max,
            # Every outcome must be known well before the claim's lease ends.
            response_timeout=min(10.0, lease / 4),
            queue_timeout=lease / 3,
            ack_after_callbacks=True,
        )

    def _deliver_callback(self, connection_id: str) -> DeferredDeliverCallback:
        def callback(pdu: DeliverSm, answer: DeliverAnswer) -> None:
            # answered by the writer once the batch holding it has committed
            self.writer.hand_over(Work(Inbound(connection_id, pdu), answer))

        return callback

    # claiming and submitting ----------------------------------------------------------------------

    def release_on_bind(self) -> None:
        """When a bind comes up, what waits for a bind goes at once: claimed by id like a job's
        messages (waiting was not an attempt, so they kept no backoff of their own)."""
        bound = {cid for cid, bind in self.binds.items() if bind.state is BindState.BOUND}
        came_up = bound - self.bound_connections
        self.bound_connections = bound
        if not came_up:
            return
        try:
            with self.database.session() as session:
                released = repository.release_waiting_for_bind(session, utcnow())
        except Exception:
            log.exception("releasing the messages waiting for a bind failed")
            self.bound_connections -= came_up  # try again on the next turn
            return
        if released:
            log.info("a bind came up: %d messages waiting for one go now", len(released))
            self.jobs.add(released)

    def bound(self) -> bool:
        return any(bind.state is BindState.BOUND for bind in self.binds.values())

    def claim_and_submit(self) -> int:
        """Claim and submit what is ready: the messages of send jobs first, then (when its
        interval is up) what the reconciler finds. Returns how many were claimed."""
        # Hold a few windows' worth at a time: what a process holds but has not written yet is in
        # doubt after a crash (counted as possible duplicates), so holding little keeps that count
        # close to the truth; holding more keeps the binds busy while the writer commits.
        capacity = self.settings.sms_claim_windows * sum(
            b.config.window_size for b in self.binds.values() if b.state is BindState.BOUND
        )
        with self.in_flight_lock:
            room = min(self.settings.sms_claim_batch, capacity) - len(self.in_flight)
        if room <= 0:
            return 0
        claimed = 0
        taken, tickets = self.jobs.take(room)
        if taken:
            try:
                claimed = self._claim(room, taken)
            except Exception:
                self.jobs.give_back(taken, tickets)  # claimed on the next turn
                raise
            self.jobs.finish(tickets)
            room -= claimed
        if room > 0 and time.monotonic() >= self.next_reconcile:
            reconciled = self._claim(room, None)
            claimed += reconciled
            # A full batch means a backlog (jobs lost with the broker, retries after an outage):
            # come back at once rather than after the interval.
            interval = 0.0 if reconciled >= room else self.settings.sms_reconcile_interval_seconds
            self.next_reconcile = time.monotonic() + interval
        return claimed

    def _claim(self, room: int, message_ids: list[str] | None) -> int:
        """Claim up to ``room`` messages (those of ``message_ids``, or the reconciler's) and
        submit them."""
        with self.in_flight_lock:
            busy = set(self.in_flight)
        claimed = self.claimer.claim(room, message_ids, busy, utcnow())
        with self.in_flight_lock:
            self.in_flight.update(message.id for message in claimed)
        routing = self.routing
        for message in claimed:
            try:
                self.submitter.submit(message, routing, self.binds)
            except Exception as exc:  # a message the codecs or the bind refuse: fail it, go on
                log.exception("message %s cannot be submitted", message.id)
                reason = f"The message cannot be submitted: {exc}"
                self.writer.hand_over(Work(NoRoute(message.id, reason, permanent=True)))
        return len(claimed)
