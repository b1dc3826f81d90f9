"""The SIP process's side of call media: carries out the API's media requests on the calls this
process holds, with gateway.calls.media_operations deciding and this module doing the IO.

A request (gateway.calls.media_requests, from the command queue) becomes a queued operation;
its play sources are made into files (gateway.calls.play_sources) on a small thread pool, off
the event thread. The owner's effects become worker commands (``Play``, ``StopPlay``,
``DetectDtmf``, ``Hold``, ``SendDtmf``, sip.worker.messages) and callbacks, written to the
outbox (gateway.events.service.publish) to the operation's subscription. Worker events
(``PlayStarted``, ``PlayFinished``, ``DtmfReceived``, ``DtmfSent``, ``CommandFailed``) and the
process's tick (recognition timers) feed the owner back. Calls are named by their leg id, as
the workers name them. A listening request carries its trunk's DTMF mode, which goes with the
call's ``DetectDtmf``: the worker decides from it and the far end's SDP whether to tap the
audio for in-band tones (sip.dtmf_mode) and says so in ``DtmfDetection``, logged here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from prometheus_client import Counter, Histogram

from gateway.calls import callbacks
from gateway.calls.dtmf_recognizer import DtmfOptions
from gateway.calls.media_operations import (
    CallMedia,
    DetectInband,
    Effect,
    Kind,
    MediaOperation,
    Notify,
    PrepareFailure,
    Reply,
    Result,
    SendTones,
    SetHold,
    StartPlay,
)
from gateway.calls.media_operations import StopPlay as StopEffect
from gateway.calls.media_requests import Action, MediaRequest
from gateway.calls.play_sources import PlaySource, PlaySourceFailed, parse_play_sources
from gateway.core.db import Database, utcnow
from gateway.core.metrics import owned_by
from gateway.events.service import publish
from sip.dtmf_mode import DtmfMode
from sip.worker.main import SipRuntime
from sip.worker.messages import (
    CallState,
    CallStateChanged,
    Command,
    CommandFailed,
    DetectDtmf,
    DtmfDetection,
    DtmfReceived,
    DtmfSent,
    Hold,
    MediaStats,
    Play,
    PlayFinished,
    PlayStarted,
    QueryMedia,
    SendDtmf,
    StopPlay,
)
from sip.worker.pool import WorkerEvent

log = logging.getLogger("trunkline.calls.media")

MEDIA_CALLBACKS = Counter(
    "trunkline_call_media_events_total",
    "Media callbacks the SIP process wrote, by ACS event type.",
    ["event"],
)
DTMF_LAG = Histogram(
    "trunkline_sip_dtmf_lag_seconds",
    "From a digit's arrival at its worker to the controller's decision on it (the pool's pipe, "
    "the supervisor's event lane)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
owned_by("sip", MEDIA_CALLBACKS, DTMF_LAG)

PREPARE_THREADS = 2
# How long a due recognition timer waits for its worker's answer before it decides anyway
# (a worker too busy or gone): the digits it held may come later, and lose.
SYNC_TIMEOUT = 1.0
_MEDIA_COMMANDS = frozenset({"Play", "StopPlay", "SendDtmf", "DetectDtmf", "Hold"})
_CALL_GONE = frozenset({"no such call", "worker gone"})  # sip.worker.pool's reasons


class Preparer(Protocol):
    """gateway.calls.play_sources.PlaySourcePreparer: a source made into an 8 kHz mono WAV
    (``scope``: the resource, whose ``playSourceCacheId`` names are its own)."""

    def prepare(self, source: PlaySource, *, scope: str = "") -> Path: ...


@dataclass
class _Call:
    """A call this process carries media operations of."""

    ids: callbacks.CallIds
    resource_id: str
    media: CallMedia = field(default_factory=CallMedia)
    dtmf_mode: DtmfMode = DtmfMode.AUTO  # its trunk's, from the last listening request
    # Its decisions and their IO, in order: the request thread, the prepare pool, the timer
    # and its events' lane take it (one call's commit no longer waits for another's).
    lock: threading.RLock = field(default_factory=threading.RLock)
    sync: _Sync | None = None  # the timer's question to the worker, while unanswered
    synced_through: float = -math.inf  # every digit that reached the worker by then is here


@dataclass(frozen=True, slots=True)
class _Sync:
    token: str
    sent_at: float


class MediaController:
    def __init__(
        self,
        database: Database,
        preparer: Preparer,
        clock: Callable[[], float] = time.monotonic,
        threads: int = PREPARE_THREADS,
    ) -> None:
        self.database = database
        self.preparer = preparer
        self.clock = clock
        self._calls: dict[str, _Call] = {}  # by leg id
        self._lock = threading.Lock()  # the membership of _calls only
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sip-play-sources")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Requests ----------------------------------------------------------------------------------

    def on_request(self, request: MediaRequest, runtime: SipRuntime) -> None:
        """A media request from the API (the command consumer's thread)."""
        reply = Reply(request.operation_context, request.subscription_id)
        with self._held(request) as call:
            if request.dtmf_mode:
                call.dtmf_mode = DtmfMode(request.dtmf_mode)
            media, now = call.media, self.clock()
            action = request.action
            operation = _operation(request, reply)
            if action in (Action.PLAY, Action.RECOGNIZE):
                effects = media.submit(operation, request.interrupt, now)
            elif action is Action.HOLD:
                effects = media.hold(reply, operation if request.sources else None, now)
            elif action is Action.UNHOLD:
                effects = media.unhold(now)
            elif action is Action.CANCEL_ALL:
                effects = media.cancel_all(now)
            elif action is Action.START_CONTINUOUS_DTMF:
                effects = media.start_continuous(reply)
            elif action is Action.STOP_CONTINUOUS_DTMF:
                effects = media.stop_continuous(reply)
            else:
                effects = media.send_dtmf(request.operation_id, request.tones, reply)
            log.info(
                "media %s on call %s (operation %s)", action.value, request.call_id, request.operation_id
            )
            self._carry_out(request.leg_id, call, effects, runtime)
        if request.sources:
            self._pool.submit(self._prepare, request, runtime)

    @contextmanager
    def _held(self, request: MediaRequest) -> Iterator[_Call]:
        """The request's call, made known here if it was not, with its lock held. A call that
        ended while the lock was awaited is made known again, as it would have been had the
        request come a moment later."""
        while True:
            with self._lock:
                call = self._calls.get(request.leg_id)
                if call is None:
                    ids = callbacks.CallIds(request.call_id, request.server_call_id, request.correlation_id)
                    call = self._calls[request.leg_id] = _Call(ids, request.resource_id)
            with call.lock:
                with self._lock:
                    current = self._calls.get(request.leg_id) is call
                if current:
                    yield call
                    return

    def _known(self, leg_id: str) -> _Call | None:
        with self._lock:
            return self._calls.get(leg_id)

    def _forget(self, leg_id: str, call: _Call) -> None:
        with self._lock:
            if self._calls.get(leg_id) is call:
                del self._calls[leg_id]

    def _prepare(self, request: MediaRequest, runtime: SipRuntime) -> None:
        """The request's sources made into files, in order (a pool thread)."""
        outcome: tuple[str, ...] | PrepareFailure
        files: list[str] = []
        try:
            for source in parse_play_sources(list(request.sources)):
                files.append(str(self.preparer.prepare(source, scope=request.resource_id)))
            outcome = tuple(files)
        except PlaySourceFailed as exc:
            outcome = PrepareFailure(len(files), Result(exc.code, exc.subcode, exc.message))
        except Exception as exc:  # a bug must not leave the call silent: the play fails
            log.exception("preparing the sources of operation %s", request.operation_id)
            outcome = PrepareFailure(len(files), Result(500, 9999, f"Unknown internal server error. {exc}"))
        call = self._known(request.leg_id)
        if call is not None:
            with call.lock:
                effects = call.media.prepared(request.operation_id, outcome, self.clock())
                self._carry_out(request.leg_id, call, effects, runtime)

    # Worker events and ticks -------------------------------------------------------------------

    def on_event(self, item: WorkerEvent, runtime: SipRuntime) -> bool:
        """Feed a worker event to its call's owner; True when it was media's alone."""
        event = item.event
        call_id = getattr(event, "call_id", "")
        call = self._known(call_id)
        if call is None:
            return isinstance(event, (PlayStarted, PlayFinished, DtmfReceived, DtmfSent, DtmfDetection))
        with call.lock:
            media, now = call.media, self.clock()
            if self._sync_answered(call_id, call, event, runtime):
                return False  # the call controller counts its packets
            if isinstance(event, CallStateChanged):
                if event.state is CallState.DISCONNECTED:
                    media.call_ended()
                    self._forget(call_id, call)
                return False
            if isinstance(event, PlayStarted):
                effects = media.play_started(event.operation_id)
            elif isinstance(event, PlayFinished):
                effects = media.play_finished(event.operation_id, event.outcome.value, event.reason, now)
            elif isinstance(event, DtmfReceived):
                effects = media.digit(event.digit, _arrival(event, now))
            elif isinstance(event, DtmfSent):
                effects = media.dtmf_sent(event.operation_id, event.ok, event.reason)
            elif isinstance(event, DtmfDetection):
                log.info(
                    "call %s: in-band DTMF detection %s (mode %s, far end %s telephone-event)",
                    call.ids.call_connection_id,
                    "on" if event.inband else "off",
                    event.mode.value,
                    "offers" if event.telephone_event else "offers no",
                )
                return True
            elif isinstance(event, CommandFailed) and event.command in _MEDIA_COMMANDS:
                log.warning("media command %s for %s failed: %s", event.command, call_id, event.reason)
                effects = media.command_failed(event.command, event.reason, now)
            else:
                return False
            self._carry_out(call_id, call, effects, runtime)
            if isinstance(event, CommandFailed) and event.reason in _CALL_GONE:
                media.call_ended()  # a request that came after the call ended: nothing more
                self._forget(call_id, call)
            return True

    def tick(self, runtime: SipRuntime) -> None:
        """Recognition timers (the SIP process's timer thread).

        A timer that is due does not decide at once: a digit that reached the worker before
        the deadline may still be on its way here (the pipe, the supervisor, a busy lane). The
        worker is asked first (``QueryMedia`` with a token, answered after every event it had
        queued); the answer lets the timer decide (``_synced``), or, if none comes within
        ``SYNC_TIMEOUT``, the timer decides anyway."""
        with self._lock:
            calls = list(self._calls.items())
        for leg_id, call in calls:
            with call.lock:
                now = self.clock()
                deadline = call.media.deadline()
                if deadline is None or now < deadline:
                    continue
                if call.synced_through >= deadline or (
                    call.sync is not None and now - call.sync.sent_at >= SYNC_TIMEOUT
                ):
                    call.sync = None
                    self._carry_out(leg_id, call, call.media.tick(now), runtime)
                elif call.sync is None:
                    call.sync = _Sync(uuid.uuid4().hex, now)
                    runtime.send(QueryMedia(leg_id, call.sync.token))

    def _sync_answered(self, leg_id: str, call: _Call, event: object, runtime: SipRuntime) -> bool:
        """True for MediaStats (a sync's answer or a poll's); a failed QueryMedia answers too."""
        if isinstance(event, MediaStats):
            self._synced(leg_id, call, event.token, runtime)
            return True
        if isinstance(event, CommandFailed) and event.command == QueryMedia.__name__ and call.sync:
            self._synced(leg_id, call, call.sync.token, runtime)
        return False

    def _synced(self, leg_id: str, call: _Call, token: str, runtime: SipRuntime) -> None:
        """The worker's answer to the timer's question: the digits it had are all here."""
        if call.sync is None or call.sync.token != token:
            return
        call.synced_through, call.sync = call.sync.sent_at, None
        deadline = call.media.deadline()
        if deadline is not None and deadline <= call.synced_through:
            self._carry_out(leg_id, call, call.media.tick(self.clock()), runtime)

    # Effects -----------------------------------------------------------------------------------

    def _carry_out(self, leg_id: str, call: _Call, effects: list[Effect], runtime: SipRuntime) -> None:
        notices: list[Notify] = []
        for effect in effects:
            if isinstance(effect, Notify):
                notices.append(effect)
                continue
            if notices:  # callbacks before a later command, in the order decided
                self._write(call, notices)
                notices = []
            runtime.send(_command(leg_id, effect, call.dtmf_mode))
        if notices:
            self._write(call, notices)

    def _write(self, call: _Call, notices: list[Notify]) -> None:
        now = utcnow()
        with self.database.session() as session:
            for notice in notices:
                if notice.reply.subscription_id is None:
                    continue  # a call without callbackUri: nobody to tell
                result = callbacks.result_information(
                    notice.result.code, notice.result.subcode, notice.result.message
                )
                data = callbacks.callback_data(call.ids, notice.reply.operation_context, result)
                data.update(notice.extra)
                publish(
                    session,
                    resource_id=call.resource_id,
                    event_type=callbacks.EVENT_PREFIX + notice.event,
                    subject=callbacks.callback_subject(call.ids.call_connection_id),
                    data=data,
                    event_time=now,
                    subscription_id=notice.reply.subscription_id,
                    prompt=True,  # a recognize's tones: the app waits on them
                )
                MEDIA_CALLBACKS.labels(notice.event).inc()
        for notice in notices:
            log.info(
                "call %s: %s %s/%s",
                call.ids.call_connection_id,
                notice.event,
                notice.result.code,
                notice.result.subcode,
            )


def _operation(request: MediaRequest, reply: Reply) -> MediaOperation:
    kind = {Action.PLAY: Kind.PLAY, Action.RECOGNIZE: Kind.RECOGNIZE}.get(request.action, Kind.HOLD_MUSIC)
    options = DtmfOptions(
        max_tones=request.max_tones,
        inter_tone_timeout=float(request.inter_tone_timeout),
        initial_silence_timeout=float(request.initial_silence_timeout),
        stop_tones=frozenset(request.stop_tones),
    )
    return MediaOperation(
        request.operation_id,
        kind,
        reply,
        sources=len(request.sources),
        loop=request.loop,
        dtmf=options,
        interrupt_prompt=request.interrupt_prompt,
    )


def _command(leg_id: str, effect: Effect, dtmf_mode: DtmfMode) -> Command:
    if isinstance(effect, StartPlay):
        return Play(leg_id, effect.operation_id, effect.files, effect.loop)
    if isinstance(effect, StopEffect):
        return StopPlay(leg_id, effect.operation_id)
    if isinstance(effect, DetectInband):
        return DetectDtmf(leg_id, effect.on, dtmf_mode)
    if isinstance(effect, SetHold):
        return Hold(leg_id, effect.held)
    assert isinstance(effect, SendTones)
    return SendDtmf(leg_id, effect.operation_id, effect.tones)


def _arrival(event: DtmfReceived, now: float) -> float:
    """When the digit reached its worker, on this clock: a digit that came before a timer's
    deadline counts even if it got here after. A stamp from the future (a worker on another
    host, whose monotonic clock is not this one's) or none at all: now."""
    if 0 < event.received_at <= now:
        DTMF_LAG.observe(now - event.received_at)
        return event.received_at
    return now
