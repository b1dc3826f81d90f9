"""DTMF of a worker's calls: digits in (RFC 2833, SIP INFO, in-band) and out (``SendDtmf``).

Everything here runs on the worker's owner thread except ``_Tap.onFrameReceived``, which the
conference bridge calls from its clock thread: it only copies the frame's bytes onto a deque.
RFC 2833's ``onDtmfEvent`` comes with the RTP, on pjmedia's media thread: ``sip.worker.ua``
copies it into a :class:`DtmfEventFields` and hands it to the owner (``UserAgent.on_owner``).
``DtmfCalls.tick`` (after each poll, owner thread) feeds those bytes to the call's
``DtmfDetector``. What pjsua 2.15 delivers, as found with SIPp and a crafted RTP peer:
- RFC 2833: ``Call.onDtmfEvent`` once when an event starts, on every update packet, and with
  the END flag on each of the (usually 3) end packets; one event is one RTP timestamp. A digit
  is reported at its first END (the retransmissions are dropped by timestamp), or when the next
  event starts and the previous never ended (its end packets were lost).
- SIP INFO ``application/dtmf-relay``: pjsua answers 200 and calls ``onDtmfEvent`` with method
  SIP_INFO and the END flag once. ``application/dtmf`` (a bare digit): pjsua does not parse it;
  ``on_transaction`` reads it from the transaction (``ua._Call.onCallTsxState``).
- In-band and out-of-band together: once a call has sent a digit out of band, in-band
  detection on it stops (the carrier sends the same key both ways).
- Whether a listening call is tapped at all is its trunk's DTMF mode against the far end's SDP
  (``sip.dtmf_mode.taps_inband``): with ``auto`` a far end that negotiated telephone-event is
  not tapped, which saves the tap's per-frame Python callback and the detector. pjsua's
  ``StreamInfo.audTxEventPt`` is the telephone-event payload type of the remote SDP (-1: none).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pjsua2 as pj

from sip.dtmf_info import BARE, info_digit
from sip.dtmf_mode import DtmfMode, taps_inband
from sip.worker.messages import (
    DetectDtmf,
    DtmfDetection,
    DtmfMethod,
    DtmfReceived,
    DtmfSent,
    Event,
    SendDtmf,
)

if TYPE_CHECKING:
    from sip.dtmf_detector import Digit, DtmfDetector

log = logging.getLogger(__name__)

TONES = frozenset("0123456789*#ABCD")
DTMF_COMMANDS = (SendDtmf, DetectDtmf)
DTMF_END = 2  # PJMEDIA_STREAM_DTMF_IS_END (pjmedia/stream.h); the wheel does not export it
INFO_DURATION_MS = 160  # the Duration= of an INFO digit we send
RFC2833_DIGIT_S = 0.26  # pjmedia sends a queued digit for 160 ms and starts the next 240 ms after it
FEED_FRAMES = 2  # frames batched per detector feed: numpy's per-call cost spread over 40 ms
TAP_GRACE_S = 0.1  # a tap no longer fed waits this long before another call may use it
_METHODS = {
    pj.PJSUA_DTMF_METHOD_RFC2833: DtmfMethod.RFC2833,
    pj.PJSUA_DTMF_METHOD_SIP_INFO: DtmfMethod.SIP_INFO,
}


@dataclass(frozen=True, slots=True)
class DtmfEventFields:
    """What ``Call.onDtmfEvent`` said, copied: its parameter lives only during the callback."""

    method: int
    digit: str
    timestamp: int
    flags: int
    duration: int

    @classmethod
    def of(cls, prm: pj.OnDtmfEventParam) -> DtmfEventFields:
        return cls(int(prm.method), str(prm.digit), int(prm.timestamp), int(prm.flags), int(prm.duration))


def vector_bytes(vector: pj.ByteVector) -> bytes:
    """The bytes of a SWIG ``ByteVector`` (a std::vector<unsigned char>) in one copy.

    Iterating it costs ~150 us per 320-byte frame (one SWIG call per byte); the vector's first
    two words are its begin and end pointers (libstdc++'s layout, the wheel's), read here, and
    checked against ``size()`` before use.
    """
    address = int(vector.this)
    begin = ctypes.c_void_p.from_address(address).value or 0
    end = ctypes.c_void_p.from_address(address + ctypes.sizeof(ctypes.c_void_p)).value or 0
    size = vector.size()
    if begin and end - begin == size:
        return ctypes.string_at(begin, size)
    return bytes(vector)


class _Tap(pj.AudioMediaPort):  # type: ignore[misc]
    """A bridge port that receives a call's audio; its callback runs on the clock thread."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: deque[bytes] = deque(maxlen=100)  # 2 s: bounded if the owner stalls
        self.open = True

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            if self.open and frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size:
                self.frames.append(vector_bytes(frame.buf))
        except Exception:  # never into C++
            log.exception("dtmf tap")


@dataclass
class _CallDtmf:
    call_id: str
    tap: _Tap | None = None
    detector: DtmfDetector | None = None
    media: pj.AudioMedia | None = None
    listening: bool = False  # DetectDtmf(inband=True) holds: the mode decides whether to tap
    mode: DtmfMode = DtmfMode.AUTO
    tapping: bool | None = None  # the decision last reported (DtmfDetection)
    out_of_band: bool = False  # the far end signals digits out of band: in-band stays quiet
    event_stamp: int | None = None  # RFC 2833 event in progress (its timestamp)
    event_digit: str = ""
    event_ms: int = 0
    ended_stamp: int | None = None
    sends: deque[tuple[float, SendDtmf]] = field(default_factory=deque)


class DtmfCalls:
    """The DTMF state of every call of one ``UserAgent``; owner thread only."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit
        self._calls: dict[str, _CallDtmf] = {}
        # Taps no call uses, each with the time from which another call may (oldest first). A
        # tap's C++ port is never destroyed while the endpoint runs: destroyed 0.1 s after its
        # call, one was still called by the clock thread on a loaded machine (CI: "'_Tap' object
        # has no attribute 'open'", then SIGSEGV). At most as many as calls were tapped at once.
        self._spare: deque[tuple[float, _Tap]] = deque()
        self._tap_numbers = itertools.count(1)

    def _state(self, call_id: str) -> _CallDtmf:
        state = self._calls.get(call_id)
        if state is None:
            state = self._calls[call_id] = _CallDtmf(call_id)
        return state

    def execute(self, call: pj.Call, call_id: str, command: SendDtmf | DetectDtmf) -> None:
        if isinstance(command, SendDtmf):
            self.send(call, call_id, command)
        else:
            self.detect(call, call_id, command)

    # digits in ---------------------------------------------------------------------------

    def on_dtmf_event(self, call_id: str, prm: DtmfEventFields) -> None:
        method = _METHODS.get(prm.method)
        if method is None:
            return
        digit = str(prm.digit).upper()
        state = self._state(call_id)
        state.out_of_band = True
        if method is DtmfMethod.SIP_INFO:
            self._received(call_id, digit, method, int(prm.duration))
            return
        stamp, ended = int(prm.timestamp), bool(prm.flags & DTMF_END)
        if stamp == state.ended_stamp:
            return  # an end packet's retransmission, or a late update of a reported digit
        if stamp != state.event_stamp and state.event_stamp is not None:
            # A new event while the previous one never ended (its end packets were lost).
            self._received(call_id, state.event_digit, method, state.event_ms)
        state.event_stamp, state.event_digit, state.event_ms = stamp, digit, int(prm.duration)
        if ended:
            state.ended_stamp, state.event_stamp = stamp, None
            self._received(call_id, digit, method, int(prm.duration))

    def on_transaction(self, call_id: str, event: pj.SipEvent) -> None:
        """An ``application/dtmf`` INFO (the body is the digit alone), which pjsua does not parse.

        Left alone, the dialog answers it 500 "Unhandled by dialog usages" once this callback
        returns, and pjsua2 has no call to answer a transaction: ``_answer_200`` does it.
        """
        if event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        change = event.body.tsxState
        tsx = change.tsx
        if tsx.role != pj.PJSIP_ROLE_UAS or tsx.method != "INFO" or tsx.state != pj.PJSIP_TSX_STATE_TRYING:
            return
        if change.type != pj.PJSIP_EVENT_RX_MSG:
            return
        found = info_digit(change.src.rdata.wholeMsg)
        if found is not None and found.content_type == BARE:
            _answer_200(change.src.rdata)
            self._state(call_id).out_of_band = True
            self._received(call_id, found.digit, DtmfMethod.SIP_INFO, found.duration_ms)

    def _received(self, call_id: str, digit: str, method: DtmfMethod, duration_ms: int) -> None:
        if digit in TONES:
            self._emit(DtmfReceived(call_id, digit, method, max(duration_ms, 0), time.monotonic()))

    # in-band ------------------------------------------------------------------------------

    def detect(self, call: pj.Call, call_id: str, command: DetectDtmf) -> None:
        state = self._state(call_id)
        state.listening, state.mode = command.inband, command.mode
        if not command.inband:
            self._detach(state, flush=True)
            state.tapping = None
            return
        self._decide(call, state, report=True)

    def on_media(self, call: pj.Call, call_id: str) -> None:
        """The call's audio (re)started: a listening call is decided again on the new SDP (and a
        tapped one gets its tap on the new stream)."""
        state = self._calls.get(call_id)
        if state is not None and state.listening:
            self._decide(call, state, report=False)

    def _decide(self, call: pj.Call, state: _CallDtmf, *, report: bool) -> None:
        """Tap the listening call's audio or not, as its mode says for the far end's SDP."""
        stream = _audio_stream(call)
        if stream is None:
            return  # no audio yet: on_media decides when the stream starts
        media, telephone_event = stream
        tap = taps_inband(state.mode, telephone_event)
        if tap:
            if state.detector is None:
                # numpy only once a call listens in-band: it adds ~15 MB to every worker's RSS
                # (102 workers: 1.5 GB) that most workers never use.
                from sip.dtmf_detector import DtmfDetector

                state.detector = DtmfDetector()
            self._attach(media, state)
        elif state.detector is not None:
            self._detach(state, flush=True)
        if report or tap != state.tapping:
            self._emit(DtmfDetection(state.call_id, tap, state.mode, telephone_event))
        state.tapping = tap

    def _attach(self, media: pj.AudioMedia, state: _CallDtmf) -> None:
        if state.tap is not None:
            self._retire(state)
        if self._spare and self._spare[0][0] <= time.monotonic():
            tap = self._spare.popleft()[1]
            tap.frames.clear()
            tap.open = True
        else:
            tap = _Tap()
            fmt = pj.MediaFormatAudio()
            fmt.init(pj.PJMEDIA_FORMAT_PCM, 8000, 1, 20000, 16)
            tap.createPort(f"dtmf-tap-{next(self._tap_numbers)}", fmt)  # it outlives its first call
        media.startTransmit(tap)
        state.tap, state.media = tap, media

    def _detach(self, state: _CallDtmf, *, flush: bool) -> None:
        if state.tap is not None:
            self._drain(state)
            if not flush:  # the call ended: its bridge port went with its stream, and its slot
                state.media = None  # may already be another call's, so no stopTransmit
            self._retire(state)
        if flush and state.detector is not None:
            self._report_inband(state, state.detector.flush())
        state.detector = None

    def _retire(self, state: _CallDtmf) -> None:
        tap, media = state.tap, state.media
        state.tap = state.media = None
        if tap is None:
            return
        tap.open = False
        if media is not None:
            with contextlib.suppress(pj.Error):  # the call's port is already gone with its stream
                media.stopTransmit(tap)
        # The clock thread may be inside the tap's callback right now: reuse it later.
        self._spare.append((time.monotonic() + TAP_GRACE_S, tap))

    def _drain(self, state: _CallDtmf, *, at_least: int = 1) -> None:
        tap, detector = state.tap, state.detector
        if tap is None or detector is None or len(tap.frames) < at_least:
            return
        if state.out_of_band:  # its digits come out of band: the detector's CPU is saved
            tap.frames.clear()
            return
        chunk = b"".join(tap.frames.popleft() for _ in range(len(tap.frames)))
        self._report_inband(state, detector.feed(chunk))

    def _report_inband(self, state: _CallDtmf, digits: list[Digit]) -> None:
        for found in digits:
            if not state.out_of_band:
                self._received(state.call_id, found.digit, DtmfMethod.INBAND, found.duration_ms)

    # digits out -----------------------------------------------------------------------------

    def send(self, call: pj.Call, call_id: str, command: SendDtmf) -> None:
        tones = command.tones.upper()
        bad = sorted(set(tones) - TONES)
        if not tones or bad:
            self._sent(command, False, f"not DTMF tones: {command.tones!r} (0-9, *, #, A-D)")
            return
        if _audio(call) is None:
            self._sent(command, False, "the call has no active audio")
            return
        prm = pj.CallSendDtmfParam()
        prm.digits = tones
        if command.method is DtmfMethod.SIP_INFO:
            prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
            prm.duration = INFO_DURATION_MS
        elif command.method is DtmfMethod.RFC2833:
            prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        else:
            self._sent(command, False, f"cannot send DTMF as {command.method.value}")
            return
        try:
            call.sendDtmf(prm)
        except pj.Error as exc:
            self._sent(command, False, exc.info())
            return
        if command.method is DtmfMethod.SIP_INFO:
            self._sent(command, True)  # each INFO is out as the call returns
            return
        # pjmedia queues RFC 2833 digits in the stream: said sent once the last one went out.
        state = self._state(call_id)
        previous = state.sends[-1][0] if state.sends else time.monotonic()
        state.sends.append((max(previous, time.monotonic()) + RFC2833_DIGIT_S * len(tones), command))

    def _sent(self, command: SendDtmf, ok: bool, reason: str = "") -> None:
        self._emit(DtmfSent(command.call_id, command.operation_id, ok, reason))

    # the owner's hooks ------------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether ``tick`` has work soon: a detector to feed or a send."""
        return any(
            s.detector is not None or s.sends or s.event_stamp is not None for s in self._calls.values()
        )

    def tick(self) -> None:
        """After each poll: feed the detectors, say which sends finished."""
        now = time.monotonic()
        for state in self._calls.values():
            self._drain(state, at_least=FEED_FRAMES)
            while state.sends and state.sends[0][0] <= now:
                self._sent(state.sends.popleft()[1], True)

    def call_ended(self, call_id: str) -> None:
        """The call is over (owner thread, in its DISCONNECTED callback): nothing of it stays."""
        state = self._calls.pop(call_id, None)
        if state is None:
            return
        self._detach(state, flush=False)
        if state.event_stamp is not None:
            self._received(call_id, state.event_digit, DtmfMethod.RFC2833, state.event_ms)
        for _, command in state.sends:
            self._sent(command, False, "the call ended")

    def close(self) -> None:
        for call_id in list(self._calls):
            self.call_ended(call_id)
        if self._spare:
            time.sleep(TAP_GRACE_S)  # the clock thread still runs until libDestroy
        self._spare.clear()


def _answer_200(rdata: pj.SipRxData) -> bool:
    """Answer a request of a dialog 200 from inside its transaction callback.

    pjsip's own ``pjsip_dlg_respond`` on the ``pjsip_rx_data`` that pjsua2 hands over as an
    opaque pointer, called through ctypes in the wheel's extension, which exports pjsip's C
    symbols. ctypes releases the GIL during the call, so the transaction's next callback
    (COMPLETED, same thread) can enter Python. False (and pjsua's 500) when anything is off.
    """
    global _PJSIP  # noqa: PLW0603
    try:
        if _PJSIP is None:
            lib = ctypes.CDLL(pj._pjsua2.__file__)
            lib.pjsip_rdata_get_dlg.restype = ctypes.c_void_p
            lib.pjsip_rdata_get_dlg.argtypes = [ctypes.c_void_p]
            lib.pjsip_dlg_respond.restype = ctypes.c_int
            lib.pjsip_dlg_respond.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_int] + [ctypes.c_void_p] * 3
            _PJSIP = lib
        address = int(rdata.pjRxData)
        dialog = _PJSIP.pjsip_rdata_get_dlg(address) if address else None
        return bool(dialog) and _PJSIP.pjsip_dlg_respond(dialog, address, 200, None, None, None) == 0
    except (OSError, AttributeError, TypeError, ValueError):
        log.exception("answering an INFO")
        return False


_PJSIP: ctypes.CDLL | None = None


def _audio_index(call: pj.Call) -> int | None:
    """The index of the call's active audio stream, if any."""
    info = call.getInfo()  # kept: .media is a view into it
    for index, media in enumerate(info.media):
        if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
            return index
    return None


def _audio(call: pj.Call) -> pj.AudioMedia | None:
    """The call's active audio stream, if any."""
    index = _audio_index(call)
    return None if index is None else call.getAudioMedia(index)


def _audio_stream(call: pj.Call) -> tuple[pj.AudioMedia, bool] | None:
    """The call's active audio stream and whether the far end negotiated telephone-event."""
    index = _audio_index(call)
    if index is None:
        return None
    return call.getAudioMedia(index), call.getStreamInfo(index).audTxEventPt >= 0
