"""The ESME side of an SMPP bind, sans-IO: what to do with each PDU, each tick and each submit.

``Esme`` owns a bind's protocol state: its state machine (``TRANSITIONS``), the submit window,
sequence numbers, the throttling pause and each session's enquire_link. The runtime
(``sms.bind``) owns the sockets, the threads and the clock: it feeds in the octets it reads, the
time, the submits it writes and what happened to the link, and carries out what comes back:
PDUs to write, submits to complete, deliveries to hand up, sessions to drop.

Not thread-safe: the runtime calls it under one lock. Besides its return values it only logs
what it ignores (stray resps, alert_notification, unsupported commands).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeAlias, TypeVar

from sms.bind_types import BindConfig, BindState, SessionRole, SubmitOutcome, SubmitRequest, SubmitResult
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
from sms.status import describe_command_status
from sms.window import Pending, Window

log = logging.getLogger("trunkline.smpp")

MIN_SEQUENCE: Final = 0x00000001
MAX_SEQUENCE: Final = 0x7FFFFFFF
MAX_DOUBLINGS: Final = 64  # back-off exponents stop here (2.0 ** 1024 overflows a float)

# How a delivery is answered when it cannot be taken: later (a callback failed, the SMSC resends
# it), or never (it cannot be parsed, resending would not help).
DELIVERY_RETRY_LATER: Final = ESME_RX_T_APPN
DELIVERY_REFUSED: Final = ESME_RX_P_APPN

T = TypeVar("T")


# the bind's state machine ---------------------------------------------------------------------


class BindEvent(enum.StrEnum):
    CONNECT = "connect"  # a connect attempt begins
    BOUND = "bound"  # every session of the bind is bound
    WAIT = "wait"  # back off before the next attempt (the bind failed, or a lost link is down)
    LINK_LOST = "link_lost"  # a session died: the link is torn down, outstanding submits fail
    UNBIND = "unbind"  # stopping: drain the window, unbind every session
    STOP = "stop"  # done; nothing leaves STOPPED


_ST, _EV = BindState, BindEvent
TRANSITIONS: Final[Mapping[BindState, Mapping[BindEvent, BindState]]] = {
    _ST.IDLE: {_EV.CONNECT: _ST.CONNECTING, _EV.STOP: _ST.STOPPED},
    _ST.CONNECTING: {
        _EV.BOUND: _ST.BOUND,
        _EV.WAIT: _ST.BACKOFF,
        _EV.LINK_LOST: _ST.CONNECTING,  # the runtime failed between the bind and BOUND
        _EV.UNBIND: _ST.UNBINDING,
        _EV.STOP: _ST.STOPPED,
    },
    _ST.BOUND: {_EV.LINK_LOST: _ST.CONNECTING, _EV.UNBIND: _ST.UNBINDING, _EV.STOP: _ST.STOPPED},
    _ST.BACKOFF: {_EV.CONNECT: _ST.CONNECTING, _EV.STOP: _ST.STOPPED},
    _ST.UNBINDING: {_EV.STOP: _ST.STOPPED},
    _ST.STOPPED: dict.fromkeys(BindEvent, _ST.STOPPED),  # a late event after stop() changes nothing
}


class InvalidTransition(RuntimeError):
    def __init__(self, state: BindState, event: BindEvent) -> None:
        super().__init__(f"no transition from {state} on {event}")
        self.state = state
        self.event = event


def next_state(state: BindState, event: BindEvent) -> BindState:
    target = TRANSITIONS[state].get(event)
    if target is None:
        raise InvalidTransition(state, event)
    return target


# back-off ---------------------------------------------------------------------------------------


def doubling_delay(initial: float, cap: float, step: int) -> float:
    """``initial`` doubled ``step - 1`` times (step 1: ``initial``), at most ``cap``."""
    return min(cap, initial * 2.0 ** min(MAX_DOUBLINGS, max(0, step - 1)))


def reconnect_delay(config: BindConfig, attempt: int, jitter: float) -> float:
    """Seconds to wait before connect attempt ``attempt + 1``; ``jitter`` is the caller's draw in
    ±``config.reconnect_jitter`` (so that binds restarted together do not reconnect together)."""
    delay = doubling_delay(config.reconnect_backoff_initial, config.reconnect_backoff_max, attempt)
    return max(0.0, delay * (1 + jitter))


# what the runtime is told to do -------------------------------------------------------------------


class Link:
    """One bound session's protocol state: octets read but not yet framed, and its keepalive."""

    def __init__(self, role: SessionRole) -> None:
        self.role = role
        self.buffer = bytearray()
        self.enquire_sequence: int | None = None  # the enquire_link awaiting its resp
        self.enquire_deadline = 0.0
        self.next_enquire = 0.0


L = TypeVar("L", bound=Link)


class DeliveryKind(enum.StrEnum):
    MO = "mo"
    RECEIPT = "receipt"
    DATA_SM = "data_sm"


@dataclass(slots=True)
class Delivery(Generic[L]):
    """A deliver_sm or data_sm to hand to the callbacks.

    ``reply`` is the resp to write at once; when it is empty (``ack_after_callbacks``) the
    answer waits for the callbacks and goes out on ``link`` as ``answer(status)``.
    """

    deliver: DeliverSm
    header: Header
    kind: DeliveryKind
    link: L | None
    reply: bytes

    def answer(self, status: int) -> bytes:
        return response_for(self.header, status)


@dataclass(frozen=True, slots=True)
class Reply:
    """Write ``pdu`` on the session concerned (a resp, a generic_nack, an enquire_link)."""

    pdu: bytes


class DropCause(enum.Enum):
    UNBIND = "unbind"  # the SMSC unbound the session
    ENQUIRE_LINK_TIMEOUT = "enquire_link_timeout"
    UNFRAMEABLE = "unframeable"


@dataclass(frozen=True, slots=True)
class Drop:
    """Write ``reply`` (when there is one), then drop the session: the link is lost."""

    cause: DropCause
    reason: str
    reply: bytes = b""


@dataclass(frozen=True, slots=True)
class Throttled:
    """The SMSC asked us to slow down: no submit_sm goes out for ``pause`` seconds."""

    pause: float


class Signal(enum.Enum):
    UNBIND_ANSWERED = "unbind_answered"  # the SMSC answered our unbind: the session may close


# A submit resolved (its ``result`` set), or something else to do; in the order decided.
Completed: TypeAlias = Pending[T, SubmitResult]
Action: TypeAlias = Pending[T, SubmitResult] | Delivery[L] | Reply | Drop | Throttled | Signal


class Esme(Generic[T]):
    """The protocol decisions of one bind, whatever its sessions (one, or two for tx+rx)."""

    def __init__(self, config: BindConfig, last_sequence: int = 0) -> None:
        self.config = config
        self.state = BindState.IDLE
        self.window: Window[T, SubmitResult] = Window(config.window_size)
        self.paused_until = 0.0  # no submit_sm before this time: the throttling back-off
        self._sequence = last_sequence  # the first number handed out follows this one
        self._throttle_streak = 0
        self._label = config.name
        self._expired = f"no submit_sm_resp within {config.response_timeout}s"

    def handle(self, event: BindEvent) -> BindState:
        self.state = next_state(self.state, event)
        return self.state

    # sequence numbers: one series for every session and across reconnections, so that a stale
    # entry never meets a new PDU's number

    @property
    def sequence(self) -> int:
        """The last number handed out (0 before the first)."""
        return self._sequence

    def next_sequence(self) -> int:
        """1, 2, ... 0x7FFFFFFF (the largest SMPP allows), then 1 again."""
        sequence = self._sequence
        self._sequence = sequence + 1 if MIN_SEQUENCE <= sequence < MAX_SEQUENCE else MIN_SEQUENCE
        return self._sequence

    # submits --------------------------------------------------------------------------------------

    def encode_submit(self, request: SubmitRequest) -> bytes:
        """The submit_sm body (no header: that takes a sequence number when it is written)."""
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

    def submit_sm(self, item: T, body: bytes, now: float, out: bytearray) -> Completed[T]:
        """Turn a reserved window slot into ``item``'s entry and append its submit_sm to ``out``."""
        window = self.window
        sequence = self.next_sequence()
        while sequence in window:  # only after a wrap, with a resp 2**31 PDUs late
            sequence = self.next_sequence()
        entry: Completed[T] = window.register(sequence, item, now, self.config.response_timeout)
        out += HEADER.pack(HEADER_SIZE + len(body), SUBMIT_SM, ESME_ROK, sequence)
        out += body
        return entry

    def write_failed(self, entries: Iterable[Completed[T]], detail: str) -> list[Completed[T]]:
        """Submits whose write failed: those still outstanding, resolved as UNKNOWN."""
        return self._resolve_all([e for e in entries if self.window.resolve(e.sequence) is e], detail)

    def expire(self, now: float) -> list[Completed[T]]:
        """Submits past their response timeout, resolved as UNKNOWN (maybe submitted)."""
        return self._resolve_all(self.window.expire(now), self._expired)

    def drain(self, detail: str) -> list[Completed[T]]:
        """Every outstanding submit, resolved as UNKNOWN: the link is gone."""
        return self._resolve_all(self.window.drain(), detail)

    @staticmethod
    def _resolve_all(entries: list[Completed[T]], detail: str) -> list[Completed[T]]:
        result = SubmitResult(SubmitOutcome.UNKNOWN, detail=detail)
        for entry in entries:
            entry.result = result
        return entries

    # the link ---------------------------------------------------------------------------------------

    def bound(self, links: Iterable[Link], now: float) -> BindState:
        """Every session is bound: schedule their keepalives and lift any throttling pause."""
        for link in links:
            link.enquire_sequence = None
            link.next_enquire = now + self.config.enquire_link_interval
        self.paused_until = 0.0
        return self.handle(BindEvent.BOUND)

    def keepalive(self, link: Link, now: float) -> Reply | Drop | None:
        """An enquire_link to write when one is due, or a drop when the last one went unanswered."""
        config = self.config
        if link.enquire_sequence is not None:
            if now > link.enquire_deadline:
                reason = f"no enquire_link_resp within {config.enquire_link_timeout}s"
                return Drop(DropCause.ENQUIRE_LINK_TIMEOUT, reason)
            return None
        if now < link.next_enquire:
            return None
        sequence = self.next_sequence()
        link.enquire_sequence = sequence
        link.enquire_deadline = now + config.enquire_link_timeout
        link.next_enquire = now + config.enquire_link_interval
        return Reply(build_pdu(ENQUIRE_LINK, sequence))

    def unbind(self) -> bytes:
        """The unbind PDU that ends a session gracefully."""
        return build_pdu(UNBIND, self.next_sequence())

    # what the SMSC sends ------------------------------------------------------------------------

    def receive_data(self, link: L, data: bytes, now: float, actions: list[Action[T, L]]) -> None:
        """Frame the octets read on ``link`` and append to ``actions`` what each complete PDU asks.

        Actions appended stand even if a later PDU raises; data that cannot be framed drops the
        session.
        """
        buffer = link.buffer
        buffer += data
        try:
            for frame in split_frames(buffer):
                self.receive(link, frame, now, actions)
        except PduError as exc:
            buffer.clear()
            actions.append(Drop(DropCause.UNFRAMEABLE, f"unframeable data from the SMSC: {exc}"))

    def receive(self, link: L, frame: bytes, now: float, actions: list[Action[T, L]]) -> None:
        """Append to ``actions`` what one PDU read on ``link`` asks for."""
        header = parse_header(frame)
        command = header.command_id
        if command == SUBMIT_SM_RESP:
            self._submit_resp(header, frame, now, actions)
        elif command in (DELIVER_SM, DATA_SM):
            actions.append(self._delivery(link, header, frame))
        elif command == ENQUIRE_LINK:
            actions.append(Reply(response_for(header)))
        elif command == ENQUIRE_LINK_RESP:
            if link.enquire_sequence == header.sequence:
                link.enquire_sequence = None
        elif command == UNBIND:
            log.info("smpp %s: the SMSC unbinds the %s session", self._label, link.role)
            actions.append(Drop(DropCause.UNBIND, "unbind from the SMSC", response_for(header)))
        elif command == UNBIND_RESP:
            actions.append(Signal.UNBIND_ANSWERED)
        elif command == GENERIC_NACK:
            self._generic_nack(header, now, actions)
        elif command == ALERT_NOTIFICATION:
            log.info("smpp %s: alert_notification received", self._label)
        elif header.is_response:
            log.debug("smpp %s: unexpected response 0x%08x", self._label, command)
        else:
            log.warning(
                "smpp %s: answering unsupported command 0x%08x with generic_nack", self._label, command
            )
            actions.append(Reply(response_for(header)))

    def _submit_resp(self, header: Header, frame: bytes, now: float, actions: list[Action[T, L]]) -> None:
        entry = self.window.resolve(header.sequence)
        if entry is None:
            log.warning(
                "smpp %s: submit_sm_resp for unknown or expired sequence %d", self._label, header.sequence
            )
        elif header.status == ESME_ROK:
            self._throttle_streak = 0
            entry.result = SubmitResult(SubmitOutcome.ACCEPTED, message_id=parse_message_id(frame))
            actions.append(entry)
        else:
            self._refused(entry, header.status, "", now, actions)

    def _generic_nack(self, header: Header, now: float, actions: list[Action[T, L]]) -> None:
        entry = self.window.resolve(header.sequence)
        if entry is not None:
            self._refused(entry, header.status, "generic_nack ", now, actions)
        else:
            log.warning(
                "smpp %s: generic_nack %s for sequence %d",
                self._label,
                describe_command_status(header.status),
                header.sequence,
            )

    def _refused(
        self, entry: Completed[T], status: int, prefix: str, now: float, actions: list[Action[T, L]]
    ) -> None:
        """A submit the SMSC did not take: RETRY for throttling (pausing the sender, longer each
        time in a row) and transient statuses, FAILED for any other."""
        config = self.config
        detail = f"{prefix}{describe_command_status(status)}"
        if status in config.throttling_statuses:
            self._throttle_streak += 1
            pause = doubling_delay(
                config.throttle_backoff_initial, config.throttle_backoff_max, self._throttle_streak
            )
            self.paused_until = max(self.paused_until, now + pause)
            actions.append(Throttled(pause))
        retry = status in config.throttling_statuses or status in config.transient_statuses
        outcome = SubmitOutcome.RETRY if retry else SubmitOutcome.FAILED
        entry.result = SubmitResult(outcome, status=status, detail=detail)
        actions.append(entry)

    def _delivery(self, link: L, header: Header, frame: bytes) -> Delivery[L] | Reply:
        try:
            deliver = parse_deliver_sm(frame)
        except PduError as exc:
            log.error("smpp %s: malformed 0x%08x (%s): %s", self._label, header.command_id, exc, frame.hex())
            return Reply(response_for(header, DELIVERY_REFUSED))
        if deliver.command == "data_sm":
            kind = DeliveryKind.DATA_SM
        else:
            kind = DeliveryKind.RECEIPT if deliver.is_receipt else DeliveryKind.MO
        if self.config.ack_after_callbacks:
            return Delivery(deliver, header, kind, link, b"")
        return Delivery(deliver, header, kind, None, response_for(header))
