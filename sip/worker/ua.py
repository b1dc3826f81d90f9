"""The pjsua2 user agent of one worker: every pjsua2 object, owned by one thread.

``UserAgent`` is created, driven (``poll``, ``execute``) and closed by the same thread, the
worker process's main thread. pjsua2 callbacks only append events to ``self.events``;
commands name calls by string ids. Traps handled here (see docs/sip-worker.md):
- a ``Call`` is dropped inside its DISCONNECTED callback, so no Python reference outlives the
  call into the reuse of its pjsua slot (its destructor would hang up the slot's next call);
- no ``getInfo`` after DISCONNECTED; no ``Call`` left referenced at ``libDestroy``;
- the null sound device keeps the 8 kHz bridge clock running, and every call's audio is
  connected to it both ways, so the caller's audio is consumed and silence is sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator

import pjsua2 as pj

from sip.headers import application_headers, header, parse_headers, parse_name_addr, request_uri
from sip.worker import transfer
from sip.worker.config import WAKE_UP, WorkerConfig
from sip.worker.dtmf import DTMF_COMMANDS, DtmfCalls, DtmfEventFields
from sip.worker.media import MEDIA_COMMANDS, CallMedia
from sip.worker.messages import (
    Answer,
    CallState,
    CallStateChanged,
    Command,
    CommandFailed,
    Event,
    Hangup,
    IncomingCall,
    MakeCall,
    MediaActive,
    MediaStats,
    QueryMedia,
    Redirect,
    Register,
    Reject,
    Ring,
    Shutdown,
    Transfer,
    Unregister,
)
from sip.worker.registration import Registrations

log = logging.getLogger(__name__)

SOURCE_HEADER = "X-Trunkline-Source"
CODECS = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}  # G.711 only; telephone-event stays
NOT_CARRIED_OUT = "this worker does not carry out this command"
MAX_ACCOUNTS = 6  # PJSUA_MAX_ACC is 8; one is the inbound account

_STATES = {
    pj.PJSIP_INV_STATE_CALLING: CallState.CALLING,
    pj.PJSIP_INV_STATE_EARLY: CallState.RINGING,
    pj.PJSIP_INV_STATE_CONNECTING: CallState.CONNECTING,
    pj.PJSIP_INV_STATE_CONFIRMED: CallState.CONNECTED,
    pj.PJSIP_INV_STATE_DISCONNECTED: CallState.DISCONNECTED,
}


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, agent: UserAgent, account: pj.Account, call_id: str, pj_id: int) -> None:
        super().__init__(account, pj_id)
        self.call_id = call_id
        self.agent = agent

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        with _contained("onCallState"):
            self.agent.on_call_state(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        with _contained("onCallMediaState"):
            self.agent.on_media_state(self)

    def onDtmfEvent(self, prm: pj.OnDtmfEventParam) -> None:
        with _contained("onDtmfEvent"):
            fields, call_id, dtmf = DtmfEventFields.of(prm), self.call_id, self.agent.dtmf
            self.agent.on_owner(lambda: dtmf.on_dtmf_event(call_id, fields))

    def onCallTsxState(self, prm: pj.OnCallTsxStateParam) -> None:
        with _contained("onCallTsxState"):
            self.agent.dtmf.on_transaction(self.call_id, prm.e)

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:
        with _contained("onCallTransferStatus"):
            self.agent.events.append(transfer.progress(self.call_id, prm))


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, agent: UserAgent) -> None:
        super().__init__()
        self.agent = agent

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        with _contained("onIncomingCall"):
            self.agent.on_incoming(self, prm)


@contextlib.contextmanager
def _contained(callback: str) -> Iterator[None]:
    """An exception must not cross back into pjsua2's C++ (the SWIG director would abort)."""
    try:
        yield
    except Exception:
        log.exception("pjsua2 callback %s failed", callback)


@contextlib.contextmanager
def _stdout_silenced() -> Iterator[None]:
    """File descriptor 1 goes to /dev/null (pjlib writes to it from C, past Python's sys.stdout)."""
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class UserAgent:
    """One pjsua2 Endpoint with a UDP transport on ``config.sip_port``; not thread-safe by design."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.events: list[Event] = []
        self._owner = threading.get_ident()
        self._handed: deque[Callable[[], None]] = deque()  # work from other threads (on_owner)
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        self._waker = socket.socket(family, socket.SOCK_DGRAM)  # ends the owner's poll
        self._waker.setblocking(False)
        self.calls: dict[str, _Call] = {}
        self.dtmf = DtmfCalls(self._emit)
        self._outbound: OrderedDict[tuple[str, str, str | None], _Account] = OrderedDict()
        self.ep = pj.Endpoint()
        with _stdout_silenced():  # pjlib logs its start-up at level 4 before libInit sets ours
            self.ep.libCreate()
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0  # every SIP callback runs inside poll(), on this thread
        ep_cfg.uaConfig.maxCalls = config.max_calls
        ep_cfg.uaConfig.userAgent = "Trunkline"
        ep_cfg.logConfig.level = config.log_level
        ep_cfg.logConfig.consoleLevel = config.log_level
        med = ep_cfg.medConfig
        med.clockRate = 8000
        med.sndClockRate = 8000
        med.channelCount = 1
        med.noVad = True
        med.ecTailLen = 0
        med.sndAutoCloseTime = -1
        self.ep.libInit(ep_cfg)
        transport = pj.TransportConfig()
        transport.port = config.sip_port
        transport.boundAddress = config.host
        transport.publicAddress = config.host
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        for codec in self.ep.codecEnum2():
            self.ep.codecSetPriority(codec.codecId, CODECS.get(codec.codecId, 0))
        clock = self.ep.audDevManager().getPlaybackDevMedia()  # slot 0, the null device
        self.media = CallMedia(clock, self._emit, self.calls.__contains__)
        self.inbound = _Account(self)
        self.inbound.create(self._account_config(f"sip:trunkline@{config.host}:{config.sip_port}"), True)
        self.registrations = Registrations(
            self._account_config, self._emit, self.on_incoming, config.outbound_proxy
        )

    # pjsua2 callbacks: record, never block --------------------------------------------------

    def on_incoming(self, account: pj.Account, prm: pj.OnIncomingCallParam) -> None:
        call_id = uuid.uuid4().hex
        call = _Call(self, account, call_id, prm.callId)
        self.calls[call_id] = call
        raw = prm.rdata.wholeMsg
        headers = parse_headers(raw)
        sender = parse_name_addr(header(headers, "From") or "")
        source = prm.rdata.srcAddress
        if self.config.trust_source_header:
            source = header(headers, SOURCE_HEADER) or source
        self.events.append(
            IncomingCall(
                call_id=call_id,
                from_uri=sender.uri,
                to_uri=parse_name_addr(header(headers, "To") or "").uri,
                display_name=sender.display_name,
                source=source,
                sip_call_id=header(headers, "Call-ID") or "",
                request_uri=request_uri(raw),
                headers=application_headers(headers),
            )
        )

    def on_call_state(self, call: _Call) -> None:
        info = call.getInfo()
        state = _STATES.get(info.state)
        if state is None:
            return
        if state is CallState.DISCONNECTED:
            # Released now, inside the callback: the slot may be reused by the next INVITE
            # of this very poll, and a late destructor would hang that call up.
            self.calls.pop(call.call_id, None)
            self.media.call_ended(call.call_id)  # its play ends before the call's last event
            self.dtmf.call_ended(call.call_id)  # so do its digits
        self.events.append(CallStateChanged(call.call_id, state, info.lastStatusCode, info.lastReason))

    def on_media_state(self, call: _Call) -> None:
        info = call.getInfo()
        for index, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            codec = call.getStreamInfo(index).codecName
            self.events.append(MediaActive(call.call_id, codec))
            # wired to the clock, its bridges and its play (whose PlayStarted follows MediaActive)
            self.media.media_active(call.call_id, call.getAudioMedia(index))
        self.dtmf.on_media(call, call.call_id)

    # the owner's API ----------------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether a play or DTMF work needs the owner loop round often (sip.worker.process)."""
        return bool(self.media.plays) or self.dtmf.busy()

    def poll(self, ms: int) -> None:
        """Run pjsua2 for up to ``ms`` milliseconds: timers, SIP messages, callbacks."""
        self.ep.libHandleEvents(ms)
        while self._handed:
            self._handed.popleft()()
        self.dtmf.tick()
        self.media.after_poll()

    def on_owner(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the owner thread: now when called there, else after the owner's
        current poll, which a wake-up datagram ends (a callback on one of pjmedia's threads)."""
        if threading.get_ident() == self._owner:
            work()
            return
        self._handed.append(work)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._waker.sendto(WAKE_UP, (self.config.host, self.config.sip_port))

    def _emit(self, event: Event) -> None:
        self.events.append(event)  # the list of now: take_events swaps it
        if threading.get_ident() != self._owner:
            # An event from one of pjmedia's threads: the owner may be in a long idle poll, and
            # the event goes out only when that poll returns.
            self._wake()

    def take_events(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    def execute(self, command: Command) -> None:
        """Carry out a command; failures become ``CommandFailed`` events, never exceptions."""
        if isinstance(command, Shutdown):
            return
        if isinstance(command, MakeCall):
            self._make_call(command)
            return
        if isinstance(command, Register | Unregister):
            self.registrations.execute(command)
            return
        call = self.calls.get(command.call_id)
        if call is None:
            self.events.append(CommandFailed(command.call_id, type(command).__name__, "no such call"))
            return
        try:
            if isinstance(command, DTMF_COMMANDS):
                self.dtmf.execute(call, call.call_id, command)
            else:
                self._on_call(call, command)
        except pj.Error as exc:
            self.events.append(CommandFailed(command.call_id, type(command).__name__, exc.info()))

    def _on_call(self, call: _Call, command: Command) -> None:
        prm = pj.CallOpParam(True)
        if isinstance(command, Ring):
            prm.statusCode = 180
            call.answer(prm)
        elif isinstance(command, Answer):
            prm.statusCode = 200
            call.answer(prm)
        elif isinstance(command, Reject):
            prm.statusCode = command.status
            if command.reason:
                prm.reason = command.reason
            call.hangup(prm)
        elif isinstance(command, Redirect):
            prm.statusCode = 302
            contact = pj.SipHeader()
            contact.hName = "Contact"
            contact.hValue = f"<{command.target}>"
            prm.txOption.headers.append(contact)
            call.hangup(prm)
        elif isinstance(command, Hangup):
            call.hangup(prm)
        elif isinstance(command, MEDIA_COMMANDS):
            self.media.execute(command)
        elif isinstance(command, Transfer):
            transfer.refer(call, command.target)
        elif isinstance(command, QueryMedia):
            rx = tx = 0
            info = call.getInfo()  # keep it: .media is a view into it (a SWIG temporary dies)
            for index, media in enumerate(info.media):
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    stat = call.getStreamStat(index)
                    rx += stat.rtcp.rxStat.pkt
                    tx += stat.rtcp.txStat.pkt
            self.events.append(MediaStats(command.call_id, rx, tx, command.token))
        else:  # a command of the media contract this worker does not carry out: said, not dropped
            self.events.append(CommandFailed(call.call_id, type(command).__name__, NOT_CARRIED_OUT))

    def _make_call(self, command: MakeCall) -> None:
        if command.call_id in self.calls:
            self.events.append(CommandFailed(command.call_id, "MakeCall", "call id in use"))
            return
        try:
            account = self._account_for(command)
        except pj.Error as exc:  # reported like any failed call, so its slot is freed
            self.events.append(CallStateChanged(command.call_id, CallState.DISCONNECTED, 500, exc.info()))
            return
        if command.bridge_with and command.bridge_with not in self.calls:
            reason = f"no call {command.bridge_with} to bridge with"
            self.events.append(CallStateChanged(command.call_id, CallState.DISCONNECTED, 500, reason))
            return
        call = _Call(self, account, command.call_id, pj.PJSUA_INVALID_ID)
        self.calls[command.call_id] = call
        prm = pj.CallOpParam(True)
        for name, value in command.headers:
            extra = pj.SipHeader()
            extra.hName = name
            extra.hValue = value
            prm.txOption.headers.append(extra)
        try:
            call.makeCall(command.target, prm)
        except pj.Error as exc:
            self.calls.pop(command.call_id, None)
            self.events.append(
                CallStateChanged(command.call_id, CallState.DISCONNECTED, exc.status, exc.info())
            )
            return
        if command.bridge_with:
            self.media.bridge_when_active(command.call_id, command.bridge_with)

    def _account_for(self, command: MakeCall) -> _Account:
        """An account per caller id and credentials (pjsua takes From from the account)."""
        key = (command.from_uri, command.display_name, command.username)
        account = self._outbound.get(key)
        if account is not None:
            self._outbound.move_to_end(key)
            return account
        limit = MAX_ACCOUNTS - len(self.registrations)  # they share pjsua's 8 accounts
        while len(self._outbound) >= limit and self._drop_idle_account():
            pass
        uri = f'"{command.display_name}" <{command.from_uri}>' if command.display_name else command.from_uri
        cfg = self._account_config(uri)
        cfg.regConfig.registrarUri = ""
        if command.username:
            cfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", command.username, 0, command.password or "")
            )
        if self.config.outbound_proxy:
            cfg.sipConfig.proxies.append(self.config.outbound_proxy)
        account = _Account(self)
        account.create(cfg, False)
        self._outbound[key] = account
        return account

    def _drop_idle_account(self) -> bool:
        busy = {call.getInfo().accId for call in self.calls.values() if call.isActive()}
        for key, account in list(self._outbound.items()):
            if account.getId() not in busy:
                del self._outbound[key]
                account.shutdown()
                return True
        return False

    def _account_config(self, uri: str) -> pj.AccountConfig:
        cfg = pj.AccountConfig()
        cfg.idUri = uri
        cfg.mediaConfig.lockCodecEnabled = False  # no re-INVITE when the far end answers 2+ codecs
        rtp = cfg.mediaConfig.transportConfig
        rtp.port = self.config.rtp_port
        rtp.portRange = self.config.rtp_port_range
        rtp.boundAddress = self.config.host
        rtp.publicAddress = self.config.host
        return cfg

    def close(self) -> None:
        """Hang up every call, drop every pjsua2 object, destroy the library (same thread)."""
        self.ep.hangupAllCalls()
        for _ in range(50):
            if not self.calls:
                break
            self.ep.libHandleEvents(20)
        self.calls.clear()
        self.dtmf.close()
        self.media.close()
        self.registrations.close()
        for account in self._outbound.values():
            account.shutdown()
        self._outbound.clear()
        self.inbound.shutdown()
        del self.inbound
        self.ep.libDestroy()
        del self.ep
        self._waker.close()
