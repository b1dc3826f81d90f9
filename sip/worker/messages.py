"""The messages between a SIP worker process and its supervisor.

Commands go to a worker, events come back; both are frozen dataclasses that name calls by the
string call ids the platform uses, never by pjsua2 objects. Their wire form (one JSON object
per message over the worker's pipe) is ``sip.worker.wire``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from sip.dtmf_mode import DtmfMode

Headers = tuple[tuple[str, str], ...]


class DtmfMethod(enum.StrEnum):
    """How a DTMF digit travelled."""

    RFC2833 = "rfc2833"  # RTP telephone-event
    SIP_INFO = "sip-info"  # INFO with application/dtmf-relay (or application/dtmf)
    INBAND = "inband"  # tones in the audio itself, found by the worker's detector


class PlayOutcome(enum.StrEnum):
    """How a ``Play`` ended."""

    COMPLETED = "completed"  # every file played (a looping play never completes)
    STOPPED = "stopped"  # StopPlay, a newer Play on the call, or the call ended (Hold keeps it)
    FAILED = "failed"  # a file could not be opened or played (reason says why)


class CallState(enum.StrEnum):
    """Where a call stands, as the worker reports it."""

    CALLING = "calling"  # our INVITE is out (outbound)
    RINGING = "ringing"  # 180/183 sent (inbound) or received (outbound)
    CONNECTING = "connecting"  # 200 OK sent or received, ACK pending
    CONNECTED = "connected"  # confirmed dialog
    DISCONNECTED = "disconnected"  # over; the call id is free for the worker


# Commands (supervisor -> worker) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ring:
    """Send 180 Ringing for an incoming call."""

    call_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer an incoming call: 200 OK with an SDP offering PCMU/PCMA."""

    call_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse an incoming call with a final status (4xx-6xx)."""

    call_id: str
    status: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Redirect:
    """Refuse an incoming call with 302 Moved Temporarily and ``target`` as its Contact."""

    call_id: str
    target: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """End a call in any state: CANCEL or BYE, or 603 for an unanswered incoming call."""

    call_id: str


@dataclass(frozen=True, slots=True)
class MakeCall:
    """Place an outbound INVITE to ``target`` (a SIP URI) with ``from_uri`` as the caller id.

    ``call_id`` is chosen by the sender. ``username``/``password`` answer a digest challenge;
    ``headers`` are added to the INVITE (e.g. P-Asserted-Identity).
    """

    call_id: str
    target: str
    from_uri: str
    display_name: str = ""
    username: str | None = None
    password: str | None = None
    headers: Headers = ()
    bridge_with: str = ""  # a call of the worker that must hold this leg too; bridged once connected


@dataclass(frozen=True, slots=True)
class QueryMedia:
    """Ask for a call's RTP counters; the worker answers with ``MediaStats`` (the same
    ``token``), after every event it had queued: a recognition timer's sync (sip.control.media)."""

    call_id: str
    token: str = ""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Hang up every call and stop the worker process."""


@dataclass(frozen=True, slots=True)
class Play:
    """Play local files, one after another, into a call: what its far end hears.

    The files are 8 kHz mono 16-bit PCM WAV, prepared by the control plane. A new ``Play`` on a
    call stops the one playing (which ends ``STOPPED``). Answered by ``PlayStarted`` when the
    first frame goes out and ``PlayFinished`` at the end.
    """

    call_id: str
    operation_id: str
    files: tuple[str, ...]
    loop: bool = False


@dataclass(frozen=True, slots=True)
class StopPlay:
    """Stop the play ``operation_id`` on the call (any play when empty): ``PlayFinished`` STOPPED."""

    call_id: str
    operation_id: str = ""


@dataclass(frozen=True, slots=True)
class SendDtmf:
    """Send DTMF tones (``0-9*#A-D``) to the call's far end; answered by ``DtmfSent``."""

    call_id: str
    operation_id: str
    tones: str
    method: DtmfMethod = DtmfMethod.RFC2833


@dataclass(frozen=True, slots=True)
class DetectDtmf:
    """Something listens for the call's digits (``inband``) or no longer does.

    RFC 2833 and SIP INFO digits are always reported. In-band detection costs CPU per frame, so
    the control plane turns it on only while something listens, and then the worker taps the
    call's audio only if ``mode`` (its trunk's ``dtmf``) says so for the far end's SDP
    (sip.dtmf_mode.taps_inband); ``DtmfDetection`` says what it decided.
    """

    call_id: str
    inband: bool
    mode: DtmfMode = DtmfMode.AUTO


@dataclass(frozen=True, slots=True)
class Bridge:
    """Connect the audio of two calls of this worker both ways (they hear each other)."""

    call_id: str
    other_call_id: str


@dataclass(frozen=True, slots=True)
class Unbridge:
    """Undo ``Bridge``: the two calls no longer hear each other."""

    call_id: str
    other_call_id: str


@dataclass(frozen=True, slots=True)
class Mute:
    """While muted, what the call's far end says reaches none of the calls it is bridged to."""

    call_id: str
    muted: bool


@dataclass(frozen=True, slots=True)
class Hold:
    """While held, the call neither hears nor is heard by its bridged calls; plays still reach it."""

    call_id: str
    held: bool


@dataclass(frozen=True, slots=True)
class Transfer:
    """Send REFER to the call's far end with ``target`` (a SIP URI); progress in ``TransferProgress``."""

    call_id: str
    target: str


@dataclass(frozen=True, slots=True)
class Register:
    """Keep a registration to a carrier's registrar (the pool sends it to worker 0).

    ``trunk`` names it; ``aor`` is the address of record (From/To, e.g. ``sip:user@carrier``),
    ``contact`` where the carrier sends its INVITEs (the edge's address); ``username`` and
    ``password`` answer the registrar's digest challenge. Refreshed by the worker before
    ``expires`` runs out; each outcome comes back as ``RegistrationState``. A second
    ``Register`` of the same trunk replaces the first.
    """

    trunk: str
    registrar: str
    aor: str
    contact: str
    username: str
    password: str
    expires: int = 300


@dataclass(frozen=True, slots=True)
class Unregister:
    """Stop registering ``trunk`` (a REGISTER with Expires: 0 goes out)."""

    trunk: str


Command = Union[  # noqa: UP007
    Ring,
    Answer,
    Reject,
    Redirect,
    Hangup,
    MakeCall,
    QueryMedia,
    Shutdown,
    Play,
    StopPlay,
    SendDtmf,
    DetectDtmf,
    Bridge,
    Unbridge,
    Mute,
    Hold,
    Transfer,
    Register,
    Unregister,
]

# Events (worker -> supervisor) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerReady:
    """The worker's endpoint is up and listening."""

    worker: int
    sip_port: int
    pid: int


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A new INVITE; the call waits (100 Trying sent) for Ring/Answer/Reject/Redirect.

    ``source`` is ``host:port`` of the carrier: the packet's source, or the edge's
    ``X-Trunkline-Source`` header when the worker sits behind Kamailio.
    """

    call_id: str
    from_uri: str
    to_uri: str
    display_name: str
    source: str
    sip_call_id: str
    request_uri: str = ""
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class CallStateChanged:
    """A call changed state; ``status``/``reason`` are the last SIP status and its phrase."""

    call_id: str
    state: CallState
    status: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MediaActive:
    """The call's audio stream is up (and connected to the conference bridge)."""

    call_id: str
    codec: str


@dataclass(frozen=True, slots=True)
class MediaStats:
    """RTP packet counters of a call's audio stream, in answer to ``QueryMedia``."""

    call_id: str
    rx_packets: int
    tx_packets: int
    token: str = ""


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """A command could not be carried out (unknown call, wrong state, pjsua2 error)."""

    call_id: str
    command: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlayStarted:
    """The first frame of a ``Play`` went out."""

    call_id: str
    operation_id: str


@dataclass(frozen=True, slots=True)
class PlayFinished:
    """A ``Play`` ended; ``reason`` says why when it failed."""

    call_id: str
    operation_id: str
    outcome: PlayOutcome
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """One digit from the call's far end (``0-9*#A-D``), as it ended (key released).

    ``received_at`` is the worker's ``time.monotonic()`` then: CLOCK_MONOTONIC is the host's,
    so the controller can judge the digit by when it came, not by when it got through."""

    call_id: str
    digit: str
    method: DtmfMethod
    duration_ms: int = 0
    received_at: float = 0.0


@dataclass(frozen=True, slots=True)
class DtmfSent:
    """The tones of a ``SendDtmf`` went out (``ok``), or could not (``reason``)."""

    call_id: str
    operation_id: str
    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DtmfDetection:
    """Whether the worker taps a call's audio for in-band tones (``inband``), and why: the
    answer to ``DetectDtmf`` once the call's audio is up, and again when a re-INVITE changes
    the decision. ``telephone_event``: the far end's SDP negotiated telephone-event."""

    call_id: str
    inband: bool
    mode: DtmfMode
    telephone_event: bool


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """A NOTIFY of a ``Transfer``: the SIP status of the referred call; ``final`` ends it."""

    call_id: str
    status: int
    final: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RegistrationState:
    """The outcome of a REGISTER of ``trunk``: ``registered`` with the registrar's ``expires``
    (seconds), or not, with the last SIP status and phrase (401/403 after a refused digest,
    408 when the registrar does not answer)."""

    trunk: str
    registered: bool
    status: int
    reason: str = ""
    expires: int = 0


Event = Union[  # noqa: UP007
    WorkerReady,
    IncomingCall,
    CallStateChanged,
    MediaActive,
    MediaStats,
    CommandFailed,
    PlayStarted,
    PlayFinished,
    DtmfReceived,
    DtmfSent,
    DtmfDetection,
    TransferProgress,
    RegistrationState,
]
Message = Union[Command, Event]  # noqa: UP007
