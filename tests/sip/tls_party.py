"""A carrier over SIP TLS, for the tests: Debian's SIPp is built without TLS (its ``-t`` has
no ``l1``), so this is pjsua2 (which has TLS) in its own process, calling or answering.

``python -m tests.sip.tls_party call TARGET CA_FILE HOLD_SECONDS`` calls TARGET (a ``sip:``
URI with ``;transport=tls``) checking the server's certificate against CA_FILE, holds the call
HOLD_SECONDS once connected, hangs up, and prints one JSON line: whether it connected, the
last status and phrase, the RTP packets received.

``python -m tests.sip.tls_party answer PORT CERT KEY`` listens for TLS on 127.0.0.1:PORT with
that certificate, prints ``ready``, answers the first INVITE with 200 OK, prints ``confirmed``
when the ACK arrives, and when the caller hangs up prints one JSON line: whether it answered,
the INVITE's Request-URI and transport.
"""

from __future__ import annotations

import json
import re
import sys
import time

import pjsua2 as pj


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.connected = False
        self.ended = False
        self.status = 0
        self.reason = ""

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        self.status, self.reason = info.lastStatusCode, info.lastReason
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.connected = True
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended = True

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        info = self.getInfo()
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                pj.Endpoint.instance().audDevManager().getCaptureDevMedia().startTransmit(
                    self.getAudioMedia(index)
                )


class _Answering(pj.Account):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.call: _Call | None = None
        self.request_uri = ""
        self.transport = ""

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.call = _Call(self, prm.callId)
        message = prm.rdata.wholeMsg
        self.request_uri = message.split(" ", 2)[1]
        via = re.search(r"^(?:Via|v):\s*SIP/2\.0/(\w+)", message, re.MULTILINE | re.IGNORECASE)
        self.transport = via.group(1).upper() if via else ""
        answer = pj.CallOpParam(True)
        answer.statusCode = 200
        self.call.answer(answer)


def _endpoint(port: int, tls: pj.TlsConfig) -> pj.Endpoint:
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    transport = pj.TransportConfig()
    transport.port = port
    transport.boundAddress = "127.0.0.1"
    transport.tlsConfig = tls
    ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, transport)
    ep.libStart()
    ep.audDevManager().setNullDev()
    return ep


def answer(port: int, cert: str, key: str) -> dict[str, object]:
    tls = pj.TlsConfig()
    tls.certFile = cert
    tls.privKeyFile = key
    tls.method = pj.PJSIP_TLSV1_2_METHOD
    ep = _endpoint(port, tls)
    account = _Answering()
    account_cfg = pj.AccountConfig()
    account_cfg.idUri = f"sip:callee@127.0.0.1:{port};transport=tls"
    account_cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    account.create(account_cfg, True)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    confirmed = False
    while time.monotonic() < deadline and not (account.call is not None and account.call.ended):
        ep.libHandleEvents(10)
        if not confirmed and account.call is not None and account.call.connected:
            confirmed = True
            print("confirmed", flush=True)
    call = account.call
    result = {
        "answered": call is not None and call.connected,
        "request_uri": account.request_uri,
        "transport": account.transport,
    }
    del call
    account.call = None
    account.shutdown()
    ep.libDestroy()
    return result


def call(target: str, ca_file: str, hold: float) -> dict[str, object]:
    tls = pj.TlsConfig()
    tls.CaListFile = ca_file
    tls.verifyServer = True
    tls.method = pj.PJSIP_TLSV1_2_METHOD
    ep = _endpoint(0, tls)
    account = pj.Account()
    account_cfg = pj.AccountConfig()
    account_cfg.idUri = "sip:+15557770000@127.0.0.1"
    account_cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    account.create(account_cfg)
    outgoing = _Call(account)
    outgoing.makeCall(target, pj.CallOpParam(True))
    deadline = time.monotonic() + 20
    hang_up_at: float | None = None
    rx = 0
    while not outgoing.ended and time.monotonic() < deadline:
        ep.libHandleEvents(10)
        if outgoing.connected and hang_up_at is None:
            hang_up_at = time.monotonic() + hold
        if hang_up_at is not None and time.monotonic() >= hang_up_at and not outgoing.ended:
            info = outgoing.getInfo()
            for index, media in enumerate(info.media):
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    rx = outgoing.getStreamStat(index).rtcp.rxStat.pkt
            outgoing.hangup(pj.CallOpParam(True))
            hang_up_at = float("inf")
    result = {
        "connected": outgoing.connected,
        "status": outgoing.status,
        "reason": outgoing.reason,
        "rx_packets": rx,
    }
    del outgoing
    account.shutdown()
    ep.libDestroy()
    return result


if __name__ == "__main__":
    if sys.argv[1] == "call":
        print(json.dumps(call(sys.argv[2], sys.argv[3], float(sys.argv[4]))), flush=True)
    else:
        print(json.dumps(answer(int(sys.argv[2]), sys.argv[3], sys.argv[4])), flush=True)
