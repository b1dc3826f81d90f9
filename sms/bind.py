"""One persistent SMPP bind per configured connection, on smpplib.

    bind = SmppBind(BindConfig(name="op1", host="smsc.example", port=2775, system_id="u", password="p"))
    bind.on_deliver(handle)               # receipts and MO messages, on the bind's dispatcher thread
    bind.start()
    result = bind.submit(SubmitRequest("15550001111", "15550002222", b"hello")).result()
    bind.stop()                           # drains the window, unbinds, closes

Threads (all daemons, all joined by ``stop()``):
  supervisor  connects and binds (transceiver, or a transmitter plus a receiver), sends
              enquire_link every interval and drops the link when a resp is missing, expires
              submits past their response timeout, reconnects with exponential backoff and
              jitter, unbinds gracefully on stop;
  sender      takes queued submits in order, waits for a window slot, the rate limiter and
              any throttling back-off, then writes the submit_sm;
  reader      one per socket: frames PDUs, resolves submits by sequence number, answers
              deliver_sm / data_sm / enquire_link / unbind and anything unknown;
  dispatcher  hands parsed deliveries to the ``on_deliver`` callbacks in arrival order, so
              slow callbacks never hold up the reader.

Writes to a socket take that socket's lock. smpplib's Client provides the connection (TLS) and
the bind handshake, and its submit_sm table defines the TLVs; framing, dispatch, the window and
the submit_sm encoder (sms.pdu, byte-for-byte smpplib's, at a fraction of its cost) and TLS that
tolerates a reader and a writer thread (sms.tlsstream) are ours, because smpplib's reader drops
the octets of a partly read PDU on a socket timeout, it has no window, its sequence generator is
not thread-safe, its ``listen()`` answers neither data_sm nor the SMSC's unbind, and an
``ssl.SSLSocket`` breaks when one thread reads while another writes.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import queue
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Final

import smpplib.client
import smpplib.consts
import smpplib.exceptions

from sms import metrics
from sms.pdu import (
    ALERT_NOTIFICATION,
    DATA_SM,
    DELIVER_SM,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_ROK,
    ESME_RX_P_APPN,
    ESME_RX_T_APPN,
    GENERIC_NACK,
    HEADER,
    HEADER_SIZE,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    SUBMIT_SM_TLVS,
    UNBIND,
    UNBIND_RESP,
    DeliverSm,
    Header,
    PduError,
    build_pdu,
    encode_submit_sm,
    parse_deliver_sm,
    parse_header,
    parse_message_id,
    response_for,
    split_frames,
)
from sms.ratelimit import TokenBucket
from sms.status import (
    DEFAULT_TRANSIENT_STATUSES,
    THROTTLING_STATUSES,
    command_status_name,
    describe_command_status,
)
from sms.tlsstream import TlsStream
from sms.window import Pending, Window

log = logging.getLogger("trunkline.smpp")

MAX_SHORT_MESSAGE: Final = 254
MAX_BURST: Final = 64  # submits the sender writes with one sendall
TICK: Final = 0.05

# TLV names a SubmitRequest may carry (smpplib's submit_sm table); anything else is refused.
SUBMIT_TLVS: Final = frozenset(SUBMIT_SM_TLVS)


SMPPLIB_ERRORS: Final = (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError)
Stream = socket.socket | TlsStream  # what a session reads and writes


class BindMode(enum.StrEnum):
    TRANSCEIVER = "transceiver"
    TRANSMITTER_RECEIVER = "transmitter+receiver"


class BindState(enum.StrEnum):
    IDLE = "idle"  # created, not started
    CONNECTING = "connecting"
    BOUND = "bound"
    BACKOFF = "backoff"  # waiting before the next connect attempt
    UNBINDING = "unbinding"
    STOPPED = "stopped"


class SubmitOutcome(enum.StrEnum):
    ACCEPTED = "accepted"  # submit_sm_resp ESME_ROK with a message id
    RETRY = "retry"  # not accepted and safe to send again later (throttled, never written, ...)
    UNKNOWN = "unknown"  # written but no resp (timeout, link lost): resending may duplicate
    FAILED = "failed"  # permanent: the SMSC refused it with the status named


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One submit_sm, already encoded: the codecs produce ``short_message`` and the UDH flag."""

    source: str
    destination: str
    short_message: bytes
    data_coding: int = 0
    esm_class: int = 0
    registered_delivery: int = 0
    tlvs: Mapping[str, int | bytes | str] = field(default_factory=dict)
    source_ton: int | None = None  # None: the connection's default
    source_npi: int | None = None
    dest_ton: int | None = None
    dest_npi: int | None = None
    protocol_id: int = 0
    priority_flag: int = 0
    validity_period: str = ""
    service_type: str = ""

    def __post_init__(self) -> None:
        if len(self.short_message) > MAX_SHORT_MESSAGE:
            raise ValueError(
                f"short_message is {len(self.short_message)} octets; use the message_payload TLV"
            )
        if self.short_message and self.tlvs.get("message_payload"):
            raise ValueError("short_message and message_payload are mutually exclusive")
        if len(self.source) > 20 or len(self.destination) > 20:
            raise ValueError("source and destination addresses are at most 20 characters")
        unknown = set(self.tlvs) - SUBMIT_TLVS
        if unknown:
            raise ValueError(f"TLVs submit_sm cannot carry here: {sorted(unknown)}")


@dataclass(frozen=True, slots=True)
class SubmitResult:
    outcome: SubmitOutcome
    message_id: str | None = None
    status: int | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome is SubmitOutcome.ACCEPTED

    @property
    def retryable(self) -> bool:
        return self.outcome in (SubmitOutcome.RETRY, SubmitOutcome.UNKNOWN)

    @property
    def maybe_submitted(self) -> bool:
        """True when the SMSC may have accepted it although we have no message id."""
        return self.outcome is SubmitOutcome.UNKNOWN

    @property
    def status_name(self) -> str | None:
        return None if self.status is None else command_status_name(self.status)


@dataclass(frozen=True)
class BindConfig:
    name: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    mode: BindMode = BindMode.TRANSCEIVER
    tls: ssl.SSLContext | None = None
    addr_ton: int = 0  # bind address_range TON/NPI
    addr_npi: int = 0
    address_range: str = ""
    source_ton: int = 1  # defaults for submits: international, E.164
    source_npi: int = 1
    dest_ton: int = 1
    dest_npi: int = 1
    window_size: int = 10
    max_submits_per_second: float = 0.0  # 0: unlimited
    rate_burst: float | None = None  # default: a tenth of a second's worth
    enquire_link_interval: float = 30.0
    enquire_link_timeout: float = 10.0
    response_timeout: float = 10.0  # submit_sm written → its resp
    queue_timeout: float = 60.0  # submit() → written; past it the submit fails as RETRY
    max_queued: int = 100_000  # submits waiting to be written; beyond it submit() answers RETRY
    connect_timeout: float = 10.0
    io_timeout: float = 10.0  # a blocked write past this drops the link
    reconnect_backoff_initial: float = 1.0
    reconnect_backoff_max: float = 60.0
    reconnect_jitter: float = 0.2  # ± this fraction of each delay
    throttle_backoff_initial: float = 0.1
    throttle_backoff_max: float = 5.0
    # submit_sm_resp statuses answered with RETRY (and, for throttling ones, a back-off); any
    # other non-zero status fails the submit permanently, naming the status
    throttling_statuses: frozenset[int] = THROTTLING_STATUSES
    transient_statuses: frozenset[int] = DEFAULT_TRANSIENT_STATUSES
    drain_timeout: float = 5.0  # on stop: wait this long for outstanding resps before unbinding
    unbind_timeout: float = 2.0
    tcp_nodelay: bool = True  # off only to measure what Nagle costs
    # False: deliver_sm_resp goes out at once, callbacks run afterwards (a crash in between loses
    # the delivery). True: the resp follows the callbacks (ESME_RX_T_APPN if one raised, so the
    # SMSC resends): callbacks can persist a receipt or MO before the SMSC forgets it.
    ack_after_callbacks: bool = False

    def __post_init__(self) -> None:
        if self.window_size < 1:
            raise ValueError("window_size must be at least 1")
        if self.enquire_link_interval <= 0 or self.enquire_link_timeout <= 0:
            raise ValueError("enquire_link interval and timeout must be positive")


@dataclass(frozen=True)
class BindStats:
    state: BindState
    window_in_use: int
    queued: int
    submits_written: int
    accepted: int
    retry: int
    unknown: int
    failed: int
    throttled: int
    reconnects: int
    bind_failures: int
    delivers: int
    enquire_link_timeouts: int


class BindRejected(Exception):
    """The SMSC answered the bind with an error status (wrong credentials, ...)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"bind rejected: {describe_command_status(status)}")
        self.status = status


class _SequenceGenerator:
    """smpplib's SimpleSequenceGenerator is not thread-safe; the sender and the supervisor both
    take numbers, and one generator spans reconnections so stale window entries never collide."""

    MIN_SEQUENCE: Final = 0x00000001
    MAX_SEQUENCE: Final = 0x7FFFFFFF

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sequence = 0

    @property
    def sequence(self) -> int:
        return self._sequence

    def next_sequence(self) -> int:
        with self._lock:
            self._sequence = self._sequence + 1 if self._sequence < self.MAX_SEQUENCE else self.MIN_SEQUENCE
            return self._sequence


class _Client(smpplib.client.Client):  # type: ignore[misc]
    """smpplib's client with TCP_NODELAY and TLS server-name checking on its socket."""

    def __init__(self, *args: Any, tcp_nodelay: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tcp_nodelay = tcp_nodelay

    def _create_socket(self) -> Stream:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if self.tcp_nodelay else 0)
        raw.settimeout(self.timeout)
        if self._ssl_context is None:
            return raw
        # Not smpplib's ssl_context.wrap_socket(raw): it passes no server_hostname (a default
        # context refuses that), and an SSLSocket must not be read and written concurrently.
        return TlsStream(raw, self._ssl_context, server_hostname=self.host)

    @property
    def sock(self) -> Stream:
        sock: Stream | None = getattr(self, "_socket", None)
        if sock is None:
            raise ConnectionError("not connected")
        return sock

    def close_socket(self) -> None:
        sock: Stream | None = getattr(self, "_socket", None)
        self._socket = None
        self.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class _Session:
    """One bound socket and its reader thread."""

    def __init__(self, role: str, client: _Client) -> None:
        self.role = role  # transceiver | transmitter | receiver
        self.client = client
        self.sock = client.sock
        self.write_lock = threading.Lock()
        self.alive = True
        self.reason = ""
        self.enquire_sequence: int | None = None
        self.enquire_deadline = 0.0
        self.next_enquire = 0.0
        self.unbind_resp = threading.Event()
        self.reader: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        with self.write_lock:
            self.sock.sendall(data)

    def mark_dead(self, reason: str) -> bool:
        """Record why the session ended; True the first time."""
        if not self.alive:
            return False
        self.alive = False
        self.reason = reason
        return True


@dataclass(slots=True)
class _Queued:
    request: SubmitRequest
    body: bytes
    future: Future[SubmitResult]
    deadline: float
    started: bool = False  # set_running_or_notify_cancel() done: no longer cancellable


DeliverCallback = Callable[[DeliverSm], None]
# Answers one delivery: the deliver_sm_resp (data_sm_resp) goes out with this command_status.
DeliverAnswer = Callable[[int], None]
DeferredDeliverCallback = Callable[[DeliverSm, DeliverAnswer], None]


class SmppBind:
    def __init__(self, config: BindConfig) -> None:
        self.config = config
        self._label = config.name
        self._sequence = _SequenceGenerator()
        self._window: Window[_Queued] = Window(config.window_size)
        self._bucket = TokenBucket(config.max_submits_per_second, config.rate_burst)
        self._cond = threading.Condition()
        self._queue: deque[_Queued] = deque()
        self._state = BindState.IDLE
        self._stopping = False
        self._stop_event = threading.Event()
        self._wakeup = threading.Event()
        self._sessions: list[_Session] = []
        self._tx: _Session | None = None
        self._paused_until = 0.0
        self._throttle_streak = 0
        # (delivery, session to answer on when ack_after_callbacks, its header); None ends the loop
        self._deliveries: queue.SimpleQueue[tuple[DeliverSm, _Session | None, Header] | None] = (
            queue.SimpleQueue()
        )
        self._callbacks: list[DeliverCallback] = []
        self._deferred_callback: DeferredDeliverCallback | None = None
        self._threads: list[threading.Thread] = []
        self._counts = dict.fromkeys(
            (
                "submits_written",
                "accepted",
                "retry",
                "unknown",
                "failed",
                "throttled",
                "reconnects",
                "bind_failures",
                "delivers",
                "enquire_link_timeouts",
            ),
            0,
        )
        self._counts_lock = threading.Lock()
        self._bound_event = threading.Event()
        label = config.name
        self._m_submits = {outcome: metrics.SUBMITS.labels(label, outcome.value) for outcome in SubmitOutcome}
        self._m_window = metrics.WINDOW_IN_USE.labels(label)
        self._m_queued = metrics.QUEUED.labels(label)

    # public interface --------------------------------------------------------------------------

    @property
    def state(self) -> BindState:
        return self._state

    @property
    def name(self) -> str:
        return self.config.name

    def on_deliver(self, callback: DeliverCallback) -> None:
        """Call ``callback(DeliverSm)`` for every deliver_sm and data_sm (receipts and MO).

        Callbacks run on the bind's dispatcher thread, one delivery at a time, in arrival order;
        an exception is logged and does not stop the others. The SMSC has already been answered
        when they run, unless ``ack_after_callbacks`` is set (see BindConfig).
        """
        self._callbacks.append(callback)

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
        self._deferred_callback = callback

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("bind already started")
        for target, suffix in (
            (self._supervise, "supervisor"),
            (self._send_loop, "sender"),
            (self._dispatch_loop, "dispatcher"),
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
        future: Future[SubmitResult] = Future()
        body = self._encode_submit(request)
        item = _Queued(request, body, future, time.monotonic() + self.config.queue_timeout)
        with self._cond:
            refusal = ""
            if self._stopping:
                refusal = "bind is stopping; not sent"
            elif len(self._queue) >= self.config.max_queued:
                refusal = "bind queue is full; not sent"
            if refusal:
                item.started = future.set_running_or_notify_cancel()
                self._finish(item, SubmitResult(SubmitOutcome.RETRY, detail=refusal))
                return future
            self._queue.append(item)
            self._m_queued.set(len(self._queue))
            self._cond.notify_all()
        return future

    def sockets(self) -> list[Stream]:
        """The sockets of the current sessions (for diagnostics: options, peers)."""
        with self._cond:
            return [session.sock for session in self._sessions if session.alive]

    def stats(self) -> BindStats:
        with self._cond:
            queued = len(self._queue)
        with self._counts_lock:
            counts = dict(self._counts)
        return BindStats(state=self._state, window_in_use=self._window.in_use(), queued=queued, **counts)

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking submits, wait for outstanding resps, unbind, close, join every thread.

        Submits still queued resolve as RETRY; any resp still missing after the drain as UNKNOWN.
        """
        budget = (
            timeout if timeout is not None else self.config.drain_timeout + 2 * self.config.unbind_timeout + 5
        )
        with self._cond:
            self._stopping = True
            self._fail_queue_locked("bind stopped before this submit was written")
            self._cond.notify_all()
        self._stop_event.set()
        self._wakeup.set()
        self._window.wake()
        deadline = time.monotonic() + budget
        current = threading.current_thread()  # stop() may be called from a deliver callback
        for thread in self._threads:
            if thread.name.endswith("dispatcher") or thread is current:
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
        self._deliveries.put(None)
        for thread in self._threads:
            if thread.name.endswith("dispatcher") and thread is not current:
                thread.join(max(0.1, deadline - time.monotonic()))
        self._set_state(BindState.STOPPED)

    def __enter__(self) -> SmppBind:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # encoding -----------------------------------------------------------------------------------

    def _encode_submit(self, request: SubmitRequest) -> bytes:
        """The submit_sm body (no header); the header is added when a sequence number is taken."""
        config = self.config
        return encode_submit_sm(
            service_type=request.service_type,
            source_ton=config.source_ton if request.source_ton is None else request.source_ton,
            source_npi=config.source_npi if request.source_npi is None else request.source_npi,
            source=request.source,
            dest_ton=config.dest_ton if request.dest_ton is None else request.dest_ton,
            dest_npi=config.dest_npi if request.dest_npi is None else request.dest_npi,
            destination=request.destination,
            esm_class=request.esm_class,
            protocol_id=request.protocol_id,
            priority_flag=request.priority_flag,
            validity_period=request.validity_period,
            registered_delivery=request.registered_delivery,
            data_coding=request.data_coding,
            short_message=request.short_message,
            tlvs=request.tlvs,
        )

    # results -----------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self._counts[name] += 1

    def _finish(self, item: _Queued, result: SubmitResult) -> None:
        self._count(result.outcome.value)
        self._m_submits[result.outcome].inc()
        if not item.future.done():
            item.future.set_result(result)

    def _fail_queue_locked(self, detail: str) -> None:
        while self._queue:
            item = self._queue.popleft()
            if self._start(item):
                self._finish(item, SubmitResult(SubmitOutcome.RETRY, detail=detail))
        self._m_queued.set(0)

    def _fail_window(self, entries: list[Pending[_Queued]], detail: str) -> None:
        for entry in entries:
            self._finish(entry.item, SubmitResult(SubmitOutcome.UNKNOWN, detail=detail))
        self._m_window.set(self._window.in_use())

    def _set_state(self, state: BindState) -> None:
        with self._cond:
            self._state = state
            self._cond.notify_all()
        metrics.BOUND.labels(self._label).set(1 if state is BindState.BOUND else 0)
        if state is BindState.BOUND:
            self._bound_event.set()
        else:
            self._bound_event.clear()

    # sender ------------------------------------------------------------------------------------

    def _next_to_send(self) -> tuple[_Queued, _Session] | None:
        """Wait until a submit can be written; None when the bind is stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                while self._queue and self._queue[0].deadline <= now:
                    item = self._queue.popleft()
                    if self._start(item):
                        self._finish(
                            item, SubmitResult(SubmitOutcome.RETRY, detail="not written within queue_timeout")
                        )
                tx = self._tx
                if self._queue and tx is not None and tx.alive and now >= self._paused_until:
                    item = self._queue.popleft()
                    self._m_queued.set(len(self._queue))
                    if not self._start(item):
                        continue
                    return item, tx
                wait = 0.1
                if self._paused_until > now:
                    wait = min(wait, self._paused_until - now)
                self._cond.wait(wait)

    @staticmethod
    def _start(item: _Queued) -> bool:
        """Mark the future running; False when the caller cancelled it."""
        if item.started:
            return True
        item.started = True
        return item.future.set_running_or_notify_cancel()

    def _requeue(self, item: _Queued) -> None:
        """Put back, at the head of the queue, a submit taken but not written."""
        with self._cond:
            if self._stopping:
                self._finish(
                    item, SubmitResult(SubmitOutcome.RETRY, detail="bind stopped before it was written")
                )
                return
            self._queue.appendleft(item)
            self._cond.notify_all()

    def _send_loop(self) -> None:
        while True:
            picked = self._next_to_send()
            if picked is None:
                return
            item, session = picked
            try:
                self._send_one(item, session)
            except Exception as exc:  # a bug must fail one submit, not stop the sender
                log.exception("smpp %s: sender failed", self._label)
                self._finish(item, SubmitResult(SubmitOutcome.UNKNOWN, detail=f"sender failed: {exc!r}"))

    def _send_one(self, item: _Queued, session: _Session) -> None:
        """Take a window slot, a rate token and sit out any throttling pause, then write.

        A submit that cannot be written (stop, link lost meanwhile) goes back to the queue head.
        """
        if not self._acquire_slot(session):
            self._requeue(item)
            return
        delay = self._bucket.reserve()
        stopped = delay > 0 and self._stop_event.wait(delay)
        if stopped or not self._wait_unpaused() or not session.alive:
            self._bucket.refund()
            self._window.release()
            self._requeue(item)
            return
        self._write_submits([item, *self._ready_behind(session)], session)

    def _wait_unpaused(self) -> bool:
        """Sit out a throttling back-off that began while this submit waited; False on stop."""
        while True:
            pause = self._paused_until - time.monotonic()
            if pause <= 0:
                return True
            if self._stop_event.wait(pause):
                return False

    def _acquire_slot(self, session: _Session) -> bool:
        while not self._window.acquire(timeout=0.1):
            if self._stopping or not session.alive:
                return False
        if self._stopping or not session.alive:
            self._window.release()
            return False
        return True

    def _ready_behind(self, session: _Session) -> list[_Queued]:
        """Submits queued behind the one being written that can go in the same write.

        Each needs a free window slot and a rate token now; the first that does not get both
        (or has expired, or meets a throttling pause) stays queued for the usual path. One
        ``sendall`` for a burst instead of one per PDU: fewer system calls, and fewer hand-offs
        of the GIL between the sender and the threads feeding it.
        """
        burst: list[_Queued] = []
        while len(burst) < MAX_BURST - 1:
            with self._cond:
                now = time.monotonic()
                if (
                    self._stopping
                    or not session.alive
                    or not self._queue
                    or self._queue[0].deadline <= now
                    or self._paused_until > now
                    or not self._window.acquire(timeout=0)
                ):
                    break
                item = self._queue.popleft()
                self._m_queued.set(len(self._queue))
                if not self._start(item):
                    self._window.release()  # cancelled by its caller
                    continue
            if self._bucket.reserve() > 0:
                self._bucket.refund()
                self._window.release()
                self._requeue(item)
                break
            burst.append(item)
        return burst

    def _write_submits(self, items: list[_Queued], session: _Session) -> None:
        """Write submits whose window slots are reserved, in one write; registered before it."""
        data = bytearray()
        written: list[tuple[int, _Queued]] = []
        for item in items:
            sequence = self._sequence.next_sequence()
            data += HEADER.pack(HEADER_SIZE + len(item.body), SUBMIT_SM, ESME_ROK, sequence)
            data += item.body
            self._window.register(sequence, item, self.config.response_timeout)
            written.append((sequence, item))
        try:
            session.write(bytes(data))
        except OSError as exc:
            for sequence, item in written:
                if self._window.resolve(sequence) is not None:
                    self._finish(item, SubmitResult(SubmitOutcome.UNKNOWN, detail=f"write failed: {exc}"))
            self._session_lost(session, f"write failed: {exc}")
            return
        with self._counts_lock:
            self._counts["submits_written"] += len(written)
        self._m_window.set(self._window.in_use())

    # reader ------------------------------------------------------------------------------------

    def _read_loop(self, session: _Session) -> None:
        buffer = bytearray()
        reason = "connection closed by the SMSC"
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
                    break
                buffer += chunk
                for frame in split_frames(buffer):
                    self._handle(session, frame)
        except PduError as exc:
            reason = f"unframeable data from the SMSC: {exc}"
        except OSError as exc:
            reason = f"write failed: {exc}"
        except Exception as exc:
            log.exception("smpp %s: reader failed", self._label)
            reason = f"reader failed: {exc!r}"
        self._session_lost(session, reason)

    def _handle(self, session: _Session, frame: bytes) -> None:
        header = parse_header(frame)
        command = header.command_id
        if command == SUBMIT_SM_RESP:
            self._on_submit_resp(header, frame)
        elif command in (DELIVER_SM, DATA_SM):
            self._on_deliver(session, header, frame)
        elif command == ENQUIRE_LINK:
            session.write(response_for(header))
        elif command == ENQUIRE_LINK_RESP:
            if session.enquire_sequence == header.sequence:
                session.enquire_sequence = None
        elif command == UNBIND:
            log.info("smpp %s: the SMSC unbinds the %s session", self._label, session.role)
            session.write(response_for(header))
            self._session_lost(session, "unbind from the SMSC")
        elif command == UNBIND_RESP:
            session.unbind_resp.set()
        elif command == GENERIC_NACK:
            self._on_generic_nack(header)
        elif command == ALERT_NOTIFICATION:
            log.info("smpp %s: alert_notification received", self._label)
        elif header.is_response:
            log.debug("smpp %s: unexpected response 0x%08x", self._label, command)
        else:
            log.warning(
                "smpp %s: answering unsupported command 0x%08x with generic_nack", self._label, command
            )
            session.write(response_for(header))

    def _on_submit_resp(self, header: Header, frame: bytes) -> None:
        entry = self._window.resolve(header.sequence)
        self._m_window.set(self._window.in_use())
        if entry is None:
            log.warning(
                "smpp %s: submit_sm_resp for unknown or expired sequence %d", self._label, header.sequence
            )
            return
        if header.status == ESME_ROK:
            if self._throttle_streak:
                with self._cond:
                    self._throttle_streak = 0
            self._finish(entry.item, SubmitResult(SubmitOutcome.ACCEPTED, message_id=parse_message_id(frame)))
        else:
            self._on_error_status(entry.item, header.status)

    def _on_generic_nack(self, header: Header) -> None:
        entry = self._window.resolve(header.sequence)
        if entry is not None:
            self._on_error_status(entry.item, header.status, "generic_nack ")
        else:
            log.warning(
                "smpp %s: generic_nack %s for sequence %d",
                self._label,
                describe_command_status(header.status),
                header.sequence,
            )

    def _on_error_status(self, item: _Queued, status: int, prefix: str = "") -> None:
        metrics.SUBMIT_STATUS.labels(self._label, command_status_name(status)).inc()
        detail = f"{prefix}{describe_command_status(status)}"
        if status in self.config.throttling_statuses:
            self._throttled()
        if status in self.config.throttling_statuses or status in self.config.transient_statuses:
            self._finish(item, SubmitResult(SubmitOutcome.RETRY, status=status, detail=detail))
        else:
            self._finish(item, SubmitResult(SubmitOutcome.FAILED, status=status, detail=detail))

    def _throttled(self) -> None:
        config = self.config
        with self._cond:
            self._throttle_streak += 1
            delay = min(
                config.throttle_backoff_max,
                config.throttle_backoff_initial * 2.0 ** (self._throttle_streak - 1),
            )
            self._paused_until = max(self._paused_until, time.monotonic() + delay)
        self._count("throttled")
        metrics.THROTTLES.labels(self._label).inc()

    def _on_deliver(self, session: _Session, header: Header, frame: bytes) -> None:
        try:
            deliver: DeliverSm | None = parse_deliver_sm(frame)
        except PduError as exc:
            log.error("smpp %s: malformed 0x%08x (%s): %s", self._label, header.command_id, exc, frame.hex())
            deliver = None
        if deliver is None:
            session.write(response_for(header, ESME_RX_P_APPN))
            return
        kind = "data_sm" if deliver.command == "data_sm" else "receipt" if deliver.is_receipt else "mo"
        self._count("delivers")
        metrics.DELIVERS.labels(self._label, kind).inc()
        if self.config.ack_after_callbacks:
            self._deliveries.put((deliver, session, header))
        else:
            session.write(response_for(header))
            self._deliveries.put((deliver, None, header))

    def _dispatch_loop(self) -> None:
        while True:
            queued = self._deliveries.get()
            if queued is None:
                return
            deliver, session, header = queued
            status = ESME_ROK
            for callback in list(self._callbacks):
                try:
                    callback(deliver)
                except Exception:
                    log.exception("smpp %s: deliver callback failed", self._label)
                    status = ESME_RX_T_APPN
            answer = self._answer(session, header)
            deferred = self._deferred_callback
            if deferred is None or status != ESME_ROK:
                answer(status)
                continue
            try:
                deferred(deliver, answer)
            except Exception:
                log.exception("smpp %s: deliver callback failed", self._label)
                answer(ESME_RX_T_APPN)

    def _answer(self, session: _Session | None, header: Header) -> DeliverAnswer:
        """The answer to one delivery: with ack_after_callbacks the resp goes out only now."""
        answered = threading.Lock()

        def answer(status: int) -> None:
            if session is None or not answered.acquire(blocking=False):
                return
            try:
                session.write(response_for(header, status))
            except OSError as exc:
                log.warning(
                    "smpp %s: could not answer a delivery (the SMSC will resend): %s", self._label, exc
                )

        return answer

    # supervisor --------------------------------------------------------------------------------

    def _session_lost(self, session: _Session, reason: str) -> None:
        if session.mark_dead(reason):
            level = logging.INFO if self._stopping else logging.WARNING
            log.log(level, "smpp %s: %s session lost: %s", self._label, session.role, reason)
        self._wakeup.set()
        with self._cond:
            self._cond.notify_all()
        self._window.wake()

    def _backoff(self, attempt: int) -> float:
        config = self.config
        delay = min(
            config.reconnect_backoff_max, config.reconnect_backoff_initial * 2.0 ** max(0, attempt - 1)
        )
        jitter = config.reconnect_jitter
        factor: float = 1 + random.uniform(-jitter, jitter)  # noqa: S311 - not for secrets
        return max(0.0, delay * factor)

    def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            self._set_state(BindState.CONNECTING)
            try:
                sessions = self._open_sessions()
            except Exception as exc:  # refused, unreachable, TLS, or an unparseable bind_resp
                attempt += 1
                self._count("bind_failures")
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
                self._set_state(BindState.BACKOFF)
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
            self._teardown(sessions, reason)
            self._count("reconnects")
            metrics.RECONNECTS.labels(self._label, reason.split(":")[0][:40]).inc()
            attempt = 1
            delay = self._backoff(attempt)
            self._set_state(BindState.BACKOFF)
            self._stop_event.wait(delay)
        self._set_state(BindState.STOPPED)

    def _open_sessions(self) -> list[_Session]:
        roles = ["transceiver"] if self.config.mode is BindMode.TRANSCEIVER else ["transmitter", "receiver"]
        sessions: list[_Session] = []
        try:
            for role in roles:
                sessions.append(self._open_session(role))
        except BaseException:
            for session in sessions:
                session.client.close_socket()
            raise
        return sessions

    def _open_session(self, role: str) -> _Session:
        config = self.config
        client = _Client(
            config.host,
            config.port,
            timeout=config.connect_timeout,
            sequence_generator=self._sequence,
            ssl_context=config.tls,
            allow_unknown_opt_params=True,
            logger_name=f"trunkline.smpp.{config.name}.{role}",
            tcp_nodelay=config.tcp_nodelay,
        )
        try:
            client.connect()
            bind = getattr(client, f"bind_{role}")
            bind(
                system_id=config.system_id,
                password=config.password,
                system_type=config.system_type,
                addr_ton=config.addr_ton,
                addr_npi=config.addr_npi,
                address_range=config.address_range,
            )
        except smpplib.exceptions.PDUError as exc:
            client.close_socket()
            if len(exc.args) > 1 and isinstance(exc.args[1], int):
                raise BindRejected(exc.args[1]) from exc
            raise
        except BaseException:
            client.close_socket()
            raise
        client.sock.settimeout(config.io_timeout)
        log.info("smpp %s: bound as %s to %s:%d", config.name, role, config.host, config.port)
        return _Session(role, client)

    def _run_bound(self, sessions: list[_Session]) -> str:
        """Keep the link while every session lives; returns why it ended ("" on stop)."""
        config = self.config
        now = time.monotonic()
        for session in sessions:
            session.next_enquire = now + config.enquire_link_interval
            session.reader = threading.Thread(
                target=self._read_loop,
                args=(session,),
                name=f"smpp-{self._label}-{session.role}-reader",
                daemon=True,
            )
            session.reader.start()
        with self._cond:
            self._sessions = sessions
            self._tx = next((s for s in sessions if s.role != "receiver"), None)
            self._paused_until = 0.0
        self._set_state(BindState.BOUND)
        while not self._stopping:
            dead = next((s for s in sessions if not s.alive), None)
            if dead is not None:
                return dead.reason
            now = time.monotonic()
            expired = self._window.expire(now)
            if expired:
                self._fail_window(expired, f"no submit_sm_resp within {config.response_timeout}s")
            for session in sessions:
                self._keepalive(session, now)
            self._wakeup.wait(TICK)
            self._wakeup.clear()
        return ""

    def _keepalive(self, session: _Session, now: float) -> None:
        config = self.config
        if session.enquire_sequence is not None:
            if now > session.enquire_deadline:
                self._count("enquire_link_timeouts")
                metrics.ENQUIRE_LINK_TIMEOUTS.labels(self._label).inc()
                self._session_lost(session, f"no enquire_link_resp within {config.enquire_link_timeout}s")
            return
        if now < session.next_enquire:
            return
        sequence = self._sequence.next_sequence()
        session.enquire_sequence = sequence
        session.enquire_deadline = now + config.enquire_link_timeout
        session.next_enquire = now + config.enquire_link_interval
        try:
            session.write(build_pdu(ENQUIRE_LINK, sequence))
        except OSError as exc:
            self._session_lost(session, f"write failed: {exc}")

    def _detach(self) -> None:
        with self._cond:
            self._tx = None
            self._sessions = []
            self._cond.notify_all()

    def _close(self, sessions: list[_Session]) -> None:
        for session in sessions:
            session.mark_dead(session.reason or "closed")
            session.client.close_socket()
        for session in sessions:
            if session.reader is not None and session.reader is not threading.current_thread():
                session.reader.join(2.0)

    def _teardown(self, sessions: list[_Session], reason: str) -> None:
        self._detach()
        self._set_state(BindState.CONNECTING)
        self._close(sessions)
        self._fail_window(self._window.drain(), f"link lost before the submit_sm_resp ({reason})")

    def _unbind(self, sessions: list[_Session]) -> None:
        """Graceful shutdown: let outstanding resps arrive, then unbind every session and close."""
        self._set_state(BindState.UNBINDING)
        for thread in self._threads:
            if thread.name.endswith("sender"):
                thread.join(self.config.drain_timeout)
        self._window.wait_empty(self.config.drain_timeout)
        self._detach()
        for session in sessions:
            if not session.alive:
                continue
            try:
                session.write(build_pdu(UNBIND, self._sequence.next_sequence()))
            except OSError:
                continue
            if not session.unbind_resp.wait(self.config.unbind_timeout):
                log.warning("smpp %s: no unbind_resp on the %s session", self._label, session.role)
        self._close(sessions)
        self._fail_window(self._window.drain(), "bind stopped before the submit_sm_resp")
