"""One persistent SMPP bind per configured connection: the runtime around the sans-IO ``sms.esme``.

    bind = SmppBind(BindConfig(name="op1", host="smsc.example", port=2775, system_id="u", password="p"))
    bind.on_deliver(handle)               # receipts and MO messages, on the bind's dispatcher thread
    bind.start()
    result = bind.submit(SubmitRequest("15550001111", "15550002222", b"hello")).result()
    bind.stop()                           # drains the window, unbinds, closes

Threads (all daemons, all joined by ``stop()``):
  supervisor  connects and binds (``sms.bind_session``: a transceiver, or a transmitter plus a
              receiver), ticks the core (enquire_link due or unanswered, submits past their
              response timeout), reconnects with exponential backoff and jitter, unbinds
              gracefully on stop;
  sender      (``sms.bind_sender``) writes queued submits as the window, the rate limiter and
              any throttling back-off allow;
  reader      one per socket: hands what it reads to the core and carries out what the core
              decides (complete submits, answer, hand up deliveries, drop the session);
  dispatcher  (``sms.bind_dispatch``) hands deliveries to the ``on_deliver`` callbacks in
              arrival order, so slow callbacks never hold up the reader.

Every call into the core is made under ``_core``, a Condition that also signals freed window
slots; the submit queue has its own lock, and writes to a socket take that socket's lock.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future
from typing import Final

from sms import metrics
from sms.bind_dispatch import DeferredDeliverCallback, DeliverCallback, DeliveryDispatcher
from sms.bind_health import BindHealth, BindStatus
from sms.bind_sender import Queued, Sender, Tally
from sms.bind_session import (
    SMPPLIB_ERRORS,
    BindRejected,
    LockedSequence,
    Session,
    Stream,
    bind_error,
    open_sessions,
)
from sms.bind_types import BindConfig, BindState, BindStats, SessionRole, SubmitRequest, SubmitResult
from sms.esme import (
    Action,
    BindEvent,
    Delivery,
    DeliveryKind,
    Drop,
    Esme,
    Reply,
    Signal,
    Throttled,
    reconnect_delay,
)
from sms.status import command_status_name
from sms.window import Pending

log = logging.getLogger("trunkline.smpp")

TICK: Final = 0.05


class SmppBind:
    def __init__(self, config: BindConfig) -> None:
        self.config = config
        self._label = config.name
        self._esme: Esme[Queued] = Esme(config)
        self._core = threading.Condition()  # guards _esme and _sessions; notified as slots free up
        self._sequence = LockedSequence(self._esme, self._core)
        self._tally = Tally(config.name)
        self._stopping = False
        self._stop_event = threading.Event()
        self._wakeup = threading.Event()
        self._sessions: list[Session] = []
        self._sender = Sender(
            config, self._esme, self._core, self._tally, self._stop_event, self._session_lost
        )
        self._dispatcher = DeliveryDispatcher(config.name)
        self._threads: list[threading.Thread] = []
        self._bound_event = threading.Event()
        self._health = BindHealth(time.time())  # under _core
        self._m_window = metrics.WINDOW_IN_USE.labels(config.name)
        self._m_delivers = {kind: metrics.DELIVERS.labels(config.name, kind.value) for kind in DeliveryKind}

    # public interface --------------------------------------------------------------------------

    @property
    def state(self) -> BindState:
        return self._esme.state

    @property
    def name(self) -> str:
        return self.config.name

    def on_deliver(self, callback: DeliverCallback) -> None:
        """Call ``callback(DeliverSm)`` for every deliver_sm and data_sm (receipts and MO).

        Callbacks run on the bind's dispatcher thread, one delivery at a time, in arrival order;
        an exception is logged and does not stop the others. The SMSC has already been answered
        when they run, unless ``ack_after_callbacks`` is set (see BindConfig).
        """
        self._dispatcher.callbacks.append(callback)

    def on_deliver_deferred(self, callback: DeferredDeliverCallback) -> None:
        """Hand every delivery to ``callback(deliver, answer)`` after the ``on_deliver`` ones.

        With ``ack_after_callbacks``, the deliver_sm_resp goes out when ``answer(status)`` is
        called, from any thread (only the first call counts). The callback may return at once
        and answer later, so that deliveries are persisted in batches rather than one commit
        each, while the dispatcher goes on to the next; how many wait unanswered is bounded by
        the SMSC's own window. A delivery whose session was lost meanwhile is not answered (the
        SMSC resends it). If the callback raises, or an ``on_deliver`` callback did, the
        delivery is refused (ESME_RX_T_APPN). One deferred callback per bind.
        """
        self._dispatcher.deferred = callback

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("bind already started")
        for target, suffix in (
            (self._supervise, "supervisor"),
            (self._sender.run, "sender"),
            (self._dispatcher.run, "dispatcher"),
        ):
            thread = threading.Thread(target=target, name=f"smpp-{self._label}-{suffix}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def wait_bound(self, timeout: float) -> bool:
        """Block until the bind is up (True) or ``timeout`` passes (False)."""
        return self._bound_event.wait(timeout)

    def submit(self, request: SubmitRequest) -> Future[SubmitResult]:
        """Queue a submit_sm; the future resolves once with its SubmitResult (never an exception).

        Raises ValueError at once for a request smpplib cannot encode. Cancelling the future
        before the submit is written withdraws it. Futures resolve on the bind's own threads
        (often the socket reader): keep done-callbacks short and non-blocking.
        """
        return self._sender.put(request)

    def sockets(self) -> list[Stream]:
        """The sockets of the current sessions (for diagnostics: options, peers)."""
        with self._core:
            return [session.sock for session in self._sessions if session.alive]

    def stats(self) -> BindStats:
        queued = self._sender.queued()
        with self._core:
            in_use = self._esme.window.in_use()
        return BindStats(state=self.state, window_in_use=in_use, queued=queued, **self._tally.snapshot())

    def status(self) -> BindStatus:
        """What the operator is shown of this bind (``trunkline smpp list``)."""
        with self._core:
            health = self._health
            in_use = self._esme.window.in_use()
            snapshot = (health.health, health.since, health.last_error)
        return BindStatus(
            health=snapshot[0],
            state=self.state,
            since=snapshot[1],
            last_error=snapshot[2],
            window_in_use=in_use,
            sent_last_minute=self._tally.accepted_last_minute(),
        )

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking submits, wait for outstanding resps, unbind, close, join every thread.

        Submits still queued resolve as RETRY; any resp still missing after the drain as UNKNOWN.
        """
        budget = (
            timeout if timeout is not None else self.config.drain_timeout + 2 * self.config.unbind_timeout + 5
        )
        self._stopping = True
        self._sender.stop()
        self._stop_event.set()
        self._wakeup.set()
        self._wake_window()
        deadline = time.monotonic() + budget
        current = threading.current_thread()  # stop() may be called from a deliver callback
        for thread in self._threads:
            if thread.name.endswith("dispatcher") or thread is current:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
        self._dispatcher.close()
        for thread in self._threads:
            if thread.name.endswith("dispatcher") and thread is not current:
                thread.join(max(0.1, deadline - time.monotonic()))
        self._transition(BindEvent.STOP)

    def __enter__(self) -> SmppBind:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # state ---------------------------------------------------------------------------------------

    def _transition(self, event: BindEvent) -> None:
        with self._core:
            state = self._esme.handle(event)
        self._announce(state)

    def _failed(self, error: str) -> None:
        with self._core:
            self._health.failed(error, time.time())

    def _announce(self, state: BindState) -> None:
        with self._core:
            self._health.state_changed(state, time.time())
        self._sender.wake()
        metrics.BOUND.labels(self._label).set(1 if state is BindState.BOUND else 0)
        if state is BindState.BOUND:
            self._bound_event.set()
        else:
            self._bound_event.clear()

    def _wake_window(self) -> None:
        with self._core:
            self._core.notify_all()

    def _fail_window(self, detail: str) -> None:
        with self._core:
            lost = self._esme.drain(detail)
            self._core.notify_all()
        self._tally.finish_all(lost)
        self._m_window.set(self._esme.window.in_use())

    # reader --------------------------------------------------------------------------------------

    def _read_loop(self, session: Session) -> None:
        reason = "connection closed by the SMSC"
        esme, core = self._esme, self._core
        actions: list[Action[Queued, Session]] = []
        try:
            while session.alive:
                try:
                    chunk = session.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError as exc:
                    reason = f"read failed: {exc}"
                    break
                if not chunk:
                    # After our own unbind the SMSC closes: not the SMSC's doing.
                    reason = "closed after our unbind" if self._stopping else reason
                    break
                try:
                    with core:
                        esme.receive_data(session, chunk, time.monotonic(), actions)
                        if actions:
                            core.notify_all()
                finally:
                    self._carry_out(session, actions)
                    actions.clear()
        except Exception as exc:
            log.exception("smpp %s: reader failed", self._label)
            reason = f"reader failed: {exc!r}"
        self._session_lost(session, reason)

    def _carry_out(self, session: Session, actions: list[Action[Queued, Session]]) -> None:
        """Do what the core decided, in order. Once the session is lost nothing more is written
        or handed up from it (the SMSC resends what was not answered); submits still resolve."""
        resolved = False
        for action in actions:
            if isinstance(action, Pending):
                resolved = True
                result = action.result
                if result is None:
                    continue
                if result.status is not None:
                    metrics.SUBMIT_STATUS.labels(self._label, command_status_name(result.status)).inc()
                self._tally.finish(action.item, result)
            elif isinstance(action, Delivery):
                self._tally.count("delivers")
                self._m_delivers[action.kind].inc()
                if session.alive and (not action.reply or self._write(session, action.reply)):
                    self._dispatcher.put(action)
            else:
                self._carry_out_other(session, action)
        if resolved:
            self._m_window.set(self._esme.window.in_use())

    def _carry_out_other(self, session: Session, action: Reply | Drop | Throttled | Signal) -> None:
        """The rarer actions, off the hot loop."""
        if isinstance(action, Reply):
            if session.alive:
                self._write(session, action.pdu)
        elif isinstance(action, Throttled):
            self._tally.count("throttled")
            metrics.THROTTLES.labels(self._label).inc()
        elif isinstance(action, Drop):
            if action.reply and session.alive:
                self._write(session, action.reply)
            self._session_lost(session, action.reason)
        elif action is Signal.UNBIND_ANSWERED:
            session.unbind_resp.set()

    def _write(self, session: Session, data: bytes) -> bool:
        try:
            session.write(data)
        except OSError as exc:
            self._session_lost(session, f"write failed: {exc}")
            return False
        return True

    # supervisor --------------------------------------------------------------------------------

    def _session_lost(self, session: Session, reason: str) -> None:
        if session.mark_dead(reason):
            level = logging.INFO if self._stopping else logging.WARNING
            log.log(level, "smpp %s: %s session lost: %s", self._label, session.role, reason)
        self._wakeup.set()
        self._sender.wake()
        self._wake_window()

    def _backoff(self, attempt: int) -> float:
        jitter = self.config.reconnect_jitter
        return reconnect_delay(self.config, attempt, random.uniform(-jitter, jitter))  # noqa: S311

    def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            self._transition(BindEvent.CONNECT)
            try:
                sessions = open_sessions(self.config, self._sequence)
            except Exception as exc:  # refused, unreachable, TLS, or an unparseable bind_resp
                attempt += 1
                self._failed(bind_error(exc))
                self._tally.count("bind_failures")
                metrics.BIND_FAILURES.labels(self._label).inc()
                delay = self._backoff(attempt)
                expected = (BindRejected, OSError, *SMPPLIB_ERRORS)
                log.log(
                    logging.WARNING if isinstance(exc, expected) else logging.ERROR,
                    "smpp %s: bind failed (%r); retrying in %.2fs",
                    self._label,
                    exc,
                    delay,
                )
                self._transition(BindEvent.WAIT)
                self._stop_event.wait(delay)
                continue
            attempt = 0
            try:
                reason = self._run_bound(sessions)
            except Exception as exc:  # a bug must cost a reconnect, not the bind
                log.exception("smpp %s: supervisor failed", self._label)
                reason = f"supervisor failed: {exc!r}"
            if self._stopping:
                self._unbind(sessions)
                break
            self._failed(reason)
            self._teardown(sessions, reason)
            self._tally.count("reconnects")
            metrics.RECONNECTS.labels(self._label, reason.split(":")[0][:40]).inc()
            attempt = 1
            delay = self._backoff(attempt)
            self._transition(BindEvent.WAIT)
            self._stop_event.wait(delay)
        self._transition(BindEvent.STOP)

    def _run_bound(self, sessions: list[Session]) -> str:
        """Keep the link while every session lives; returns why it ended ("" on stop)."""
        for session in sessions:
            session.reader = threading.Thread(
                target=self._read_loop,
                args=(session,),
                name=f"smpp-{self._label}-{session.role}-reader",
                daemon=True,
            )
            session.reader.start()
        with self._core:
            self._sessions = sessions
            state = self._esme.bound(sessions, time.monotonic())
        self._sender.attach(next((s for s in sessions if s.role is not SessionRole.RECEIVER), None))
        self._announce(state)
        while not self._stopping:
            dead = next((s for s in sessions if not s.alive), None)
            if dead is not None:
                return dead.reason
            now = time.monotonic()
            with self._core:
                expired = self._esme.expire(now)
                checks = [self._esme.keepalive(session, now) for session in sessions]
                if expired:
                    self._core.notify_all()
            if expired:
                self._tally.finish_all(expired)
                self._m_window.set(self._esme.window.in_use())
            for session, check in zip(sessions, checks, strict=True):
                if check is not None:
                    self._keepalive(session, check)
            self._wakeup.wait(TICK)
            self._wakeup.clear()
        return ""

    def _keepalive(self, session: Session, check: Reply | Drop) -> None:
        if isinstance(check, Drop):
            self._tally.count("enquire_link_timeouts")
            metrics.ENQUIRE_LINK_TIMEOUTS.labels(self._label).inc()
            self._session_lost(session, check.reason)
            return
        self._write(session, check.pdu)

    def _detach(self) -> None:
        self._sender.attach(None)
        with self._core:
            self._sessions = []

    def _close(self, sessions: list[Session]) -> None:
        for session in sessions:
            session.close()
        for session in sessions:
            if session.reader is not None and session.reader is not threading.current_thread():
                session.reader.join(2.0)

    def _teardown(self, sessions: list[Session], reason: str) -> None:
        self._detach()
        self._transition(BindEvent.LINK_LOST)
        self._close(sessions)
        self._fail_window(f"link lost before the submit_sm_resp ({reason})")

    def _unbind(self, sessions: list[Session]) -> None:
        """Graceful shutdown: let outstanding resps arrive, then unbind every session and close."""
        self._transition(BindEvent.UNBIND)
        for thread in self._threads:
            if thread.name.endswith("sender"):
                thread.join(self.config.drain_timeout)
        with self._core:
            self._core.wait_for(self._esme.window.idle, self.config.drain_timeout)
        self._detach()
        for session in sessions:
            if not session.alive:
                continue
            with self._core:
                unbind = self._esme.unbind()
            try:
                session.write(unbind)
            except OSError:
                continue
            if not session.unbind_resp.wait(self.config.unbind_timeout):
                log.warning("smpp %s: no unbind_resp on the %s session", self._label, session.role)
        self._close(sessions)
        self._fail_window("bind stopped before the submit_sm_resp")
