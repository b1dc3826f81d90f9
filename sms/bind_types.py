"""What an SMPP bind is configured with and what it answers: settings, requests, results, states.

Shared by the sans-IO core (``sms.esme``) and the runtime that drives it (``sms.bind``); plain
data, no I/O.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sms.pdu import SUBMIT_SM_TLVS
from sms.status import DEFAULT_TRANSIENT_STATUSES, THROTTLING_STATUSES, command_status_name

MAX_SHORT_MESSAGE: Final = 254

# TLV names a SubmitRequest may carry (smpplib's submit_sm table); anything else is refused.
SUBMIT_TLVS: Final = frozenset(SUBMIT_SM_TLVS)


class BindMode(enum.StrEnum):
    TRANSCEIVER = "transceiver"
    TRANSMITTER_RECEIVER = "transmitter+receiver"

    @property
    def roles(self) -> tuple[SessionRole, ...]:
        """The sessions a bind of this mode opens, in order."""
        if self is BindMode.TRANSCEIVER:
            return (SessionRole.TRANSCEIVER,)
        return (SessionRole.TRANSMITTER, SessionRole.RECEIVER)


class SessionRole(enum.StrEnum):
    """What one socket of a bind is bound as (the bind_<role> PDU it sent)."""

    TRANSCEIVER = "transceiver"
    TRANSMITTER = "transmitter"
    RECEIVER = "receiver"


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
    status: int | None = None  # the SMSC's command_status, when it refused the submit
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
    reconnect_backoff_max: float = 10.0
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
