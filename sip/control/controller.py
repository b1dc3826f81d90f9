"""The SIP process's side of the calls domain: worker events in, call state and commands out.

``trunkline sip`` runs the worker pool (sip.worker.main) with :meth:`CallController.on_event`
as its event handler, a :class:`~sip.control.commands.CommandConsumer` feeding the pool the
API's commands for this process, and a timer thread calling :meth:`CallController.tick` (ring
timeouts). Thin: the decisions are in inbound.py and, through transitions.py, lifecycle.py;
every state change commits before its command goes to the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from prometheus_client import Counter

from gateway.calls import inbound, party_events, registrations, repository, service, transitions
from gateway.calls.lifecycle import CallState, Input, LegConnected, LegEnded, RingTimeout
from gateway.calls.routing import OperatorTrunk
from gateway.core.db import Database, utcnow
from gateway.identity.tokens import Keyring
from sip.control.media import MediaController
from sip.control.parties import PARTY_COMMANDS, PartiesControl
from sip.control.ring_timers import RingTimers
from sip.control.rtp_counts import RtpCounts
from sip.worker.config import DEFAULT_MEDIA_POLL_SECONDS
from sip.worker.main import SipRuntime
from sip.worker.messages import CallState as LegState
from sip.worker.messages import (
    CallStateChanged,
    Command,
    CommandFailed,
    IncomingCall,
    MakeCall,
    MediaStats,
    QueryMedia,
    Register,
    RegistrationState,
    Reject,
    Ring,
    TransferProgress,
    Unregister,
    WorkerReady,
)
from sip.worker.pool import WorkerEvent

log = logging.getLogger("trunkline.calls.controller")

RTP_PACKETS = Counter(
    "trunkline_sip_rtp_packets_total",
    "RTP packets of connected calls, as the workers count them (polled every media poll period).",
    ["direction"],
)
SILENT_LEGS = Counter(
    "trunkline_sip_silent_legs_total",
    "Connected call legs that ended with no RTP packet in one direction (or both) by their "
    "last media poll: one-way or dead audio.",
    ["missing"],
)

WORKER_DIED = "worker died"  # the supervisor's reason for a dead worker's calls (sip.worker.pool)
TRUNKS_TTL = 2.0  # seconds the operator's trunks are cached between INVITEs
REGISTRAR_WORKER = 0  # the pool's worker that keeps the registrations (sip.worker.pool)


class CallController:
    def __init__(
        self,
        database: Database,
        keyring: Keyring,
        process: str,
        ring_timeout: timedelta,
        issuer: str,
        media: MediaController | None = None,
        media_poll_seconds: float = DEFAULT_MEDIA_POLL_SECONDS,
    ) -> None:
        self.database = database
        self.media = media  # play, recognize, DTMF, hold (sip.control.media)
        self.media_poll_seconds = media_poll_seconds
        self.keyring = keyring
        self.options = inbound.OfferSettings(process, ring_timeout, issuer)
        self._trunks: list[OperatorTrunk] = []
        self._trunks_at = 0.0
        self._rings = RingTimers()
        self._rtp = RtpCounts()  # connected legs' RTP packet counts, from the media polls
        self._media_polled = 0.0
        self.parties = PartiesControl(database, process)
        # the REGISTERs the registrar worker was given, by trunk; compared every TRUNKS_TTL
        self._registered: dict[str, Register] = {}
        self._registrations_at = 0.0
        self._registrations_lock = threading.Lock()  # the ring timer's thread and the events'

    @property
    def process(self) -> str:
        return self.options.sip_process

    def trunks(self) -> list[OperatorTrunk]:
        if time.monotonic() - self._trunks_at > TRUNKS_TTL:
            with self.database.read_session() as session:
                _, by_name = service.operator_routing(session)
            self._trunks, self._trunks_at = list(by_name.values()), time.monotonic()
        return self._trunks

    def on_event(self, item: WorkerEvent, runtime: SipRuntime) -> None:
        event = item.event
        if self.media is not None and self.media.on_event(item, runtime):
            return
        if isinstance(event, IncomingCall):
            self._offer(event, item.worker, runtime)
        elif isinstance(event, CallStateChanged):
            self._call_state(event, runtime)
        elif isinstance(event, MediaStats):
            self._count_media(event)
        elif isinstance(event, TransferProgress):
            for command in self.parties.on_transfer_progress(event):
                self.send(command, runtime)
        elif isinstance(event, CommandFailed) and event.command in PARTY_COMMANDS:
            for command in self.parties.on_command_failed(event) or ():
                self.send(command, runtime)
        elif isinstance(event, RegistrationState | WorkerReady):
            self._registrar_event(event, runtime)
        elif isinstance(event, CommandFailed):
            log.warning("SIP command %s for %s failed: %s", event.command, event.call_id, event.reason)
            if event.command == MakeCall.__name__:  # no worker took the INVITE: the attempt failed
                self._leg(event.call_id, LegEnded(503, event.reason), runtime)

    def _call_state(self, event: CallStateChanged, runtime: SipRuntime) -> None:
        if event.state is LegState.CONNECTED:
            self._rtp.connected(event.call_id)
            self._leg(event.call_id, LegConnected(), runtime)
        elif event.state is LegState.DISCONNECTED:
            silence = self._rtp.ended(event.call_id)
            if silence is not None:
                SILENT_LEGS.labels(silence.missing).inc()
                log.warning(
                    "call leg %s ended with no RTP %s by its last media poll (%d received, %d sent)",
                    event.call_id,
                    "either way" if silence.missing == "both" else silence.missing,
                    silence.received,
                    silence.sent,
                )
            ended = LegEnded(event.status, event.reason, worker_died=event.reason == WORKER_DIED)
            self._leg(event.call_id, ended, runtime)

    def _registrar_event(self, event: RegistrationState | WorkerReady, runtime: SipRuntime) -> None:
        if isinstance(event, RegistrationState):
            with self.database.session() as session:
                registrations.record(session, event, utcnow())
            log.info(
                "trunk %s: %s (%d %s)",
                event.trunk,
                "registered" if event.registered else "not registered",
                event.status,
                event.reason,
            )
        elif event.worker == REGISTRAR_WORKER:
            with self._registrations_lock:
                self._registered.clear()  # a new registrar worker: it holds no registration yet
            self.keep_registrations(runtime)

    def _offer(self, invite: IncomingCall, worker: int, runtime: SipRuntime) -> None:
        trunks = self.trunks()
        now = utcnow()
        with self.database.session() as session:
            offered = inbound.offer(
                session, invite, worker, trunks, self.keyring.signing_key, self.options, now
            )
        if offered.verdict is inbound.Verdict.RING:
            if offered.call_id is not None:
                self._rings.offered(offered.call_id, now + self.options.ring_timeout)
            runtime.send(Ring(invite.call_id))
        else:
            runtime.send(Reject(invite.call_id, offered.verdict.sip_status))
        log.info("INVITE %s from %s to %s: %s", invite.call_id, invite.source, invite.to_uri, offered.verdict)

    def _leg(self, leg_id: str, event: Input, runtime: SipRuntime) -> None:
        with self.database.session() as session:
            call = repository.lock_call_of_leg(session, leg_id)
            if call is None:
                return
            self._rings.heard(call.id)
            every_leg = repository.legs_of(session, call.id)
            leg = next((each for each in every_leg if each.id == leg_id), None)
            if leg is None:
                return
            assert isinstance(event, LegConnected | LegEnded)
            legs = [each for each in every_leg if each.active]  # read once for both owners
            commands = party_events.on_leg(session, call, leg, event, utcnow(), legs)  # several parties
            if commands is None:
                active = repository.own_leg(legs)
                if active is None or active.id != leg_id:
                    repository.end_leg(leg, utcnow())  # an earlier attempt's late news
                    return
                commands = transitions.apply(session, call, event, utcnow(), legs=legs).commands
        for command in commands:
            self.send(command, runtime)

    def _count_media(self, stats: MediaStats) -> None:
        new = self._rtp.report(stats.call_id, stats.rx_packets, stats.tx_packets)
        if new is not None:
            RTP_PACKETS.labels("received").inc(new[0])
            RTP_PACKETS.labels("sent").inc(new[1])

    def keep_registrations(self, runtime: SipRuntime) -> None:
        """Give the registrar worker a REGISTER for each trunk that must register (again when
        its settings changed) and an Unregister for each that no longer must."""
        with self._registrations_lock:
            self._keep_registrations(runtime)

    def _keep_registrations(self, runtime: SipRuntime) -> None:
        self._registrations_at = time.monotonic()
        with self.database.read_session() as session:
            wanted = registrations.wanted(session, runtime.address)
        gone = [trunk for trunk in self._registered if trunk not in wanted]
        for trunk in gone:
            runtime.send(Unregister(trunk))
            del self._registered[trunk]
        if gone:
            with self.database.session() as session:
                for trunk in gone:
                    registrations.forget(session, trunk, utcnow())
        for trunk, command in wanted.items():
            if self._registered.get(trunk) != command and runtime.send(command) is not None:
                self._registered[trunk] = command

    def tick(self, runtime: SipRuntime) -> None:
        """End the calls of this process that rang past their deadline (480 to the carrier);
        every media poll period, ask the workers for the RTP counts of connected calls; every
        ``TRUNKS_TTL``, bring the trunks' registrations in line with the database; media timers."""
        if self.media is not None:
            self.media.tick(runtime)
        if time.monotonic() - self._registrations_at >= TRUNKS_TTL:
            self.keep_registrations(runtime)
        if time.monotonic() - self._media_polled >= self.media_poll_seconds:
            self._media_polled = time.monotonic()
            for leg_id in self._rtp.legs():
                runtime.send(QueryMedia(leg_id))
        for command in self.parties.due_invitations():
            self.send(command, runtime)
        now = utcnow()
        if not self._rings.look(now):
            return
        try:
            self._ring_out(now, runtime)
        except BaseException:
            self._rings.again()
            raise

    def _ring_out(self, now: datetime, runtime: SipRuntime) -> None:
        with self.database.read_session() as session:
            due = repository.rings_due(session, self.process, now, CallState.OFFERED.value)
        for call_id in due:
            with self.database.session() as session:
                call = repository.lock_call(session, call_id)
                if call is None:
                    continue
                applied = transitions.apply(session, call, RingTimeout(), now)
            if applied.command is not None:
                log.info("call %s rang out", call_id)
            for command in applied.commands:
                self.send(command, runtime)

    def send(self, command: Command, runtime: SipRuntime) -> None:
        """A command from the API (or this controller) to the pool. An outbound leg's INVITE is
        first claimed for this process (committed): one whose call is no longer dialing (the
        app hung up, or no process took it in time) is dropped, never placed."""
        if isinstance(command, MakeCall):
            with self.database.session() as session:
                claimed = repository.claim_placement(session, command.call_id, self.process)
            if not claimed:
                log.info("INVITE %s not placed: its call is no longer dialing", command.call_id)
                return
        worker = runtime.send(command)
        if isinstance(command, MakeCall):
            with self.database.session() as session:
                repository.set_leg_worker(session, command.call_id, worker)
