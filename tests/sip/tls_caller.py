"""A carrier calling over SIP TLS, for the tests: Debian's SIPp is built without TLS (its
``-t`` has no ``l1``), so this places the call with pjsua2 (which has TLS) in its own process.

``python -m tests.sip.tls_caller TARGET CA_FILE HOLD_SECONDS`` calls TARGET (a ``sip:`` URI
with ``;transport=tls``) checking the server's certificate against CA_FILE, holds the call
HOLD_SECONDS once connected, hangs up, and prints one JSON line: whether it connected, the
last status and phrase, the RTP packets received.
"""

from __future__ import annotations

import json
import sys
import time

import pjsua2 as pj


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, account: pj.Account) -> None:
        super().__init__(account)
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


def main(target: str, ca_file: str, hold: float) -> dict[str, object]:
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
    transport.port = 0
    transport.boundAddress = "127.0.0.1"
    transport.tlsConfig.CaListFile = ca_file
    transport.tlsConfig.verifyServer = True
    transport.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
    ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, transport)
    ep.libStart()
    ep.audDevManager().setNullDev()
    account = pj.Account()
    account_cfg = pj.AccountConfig()
    account_cfg.idUri = "sip:+15557770000@127.0.0.1"
    account_cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    account.create(account_cfg)
    call = _Call(account)
    call.makeCall(target, pj.CallOpParam(True))
    deadline = time.monotonic() + 20
    hang_up_at: float | None = None
    rx = 0
    while not call.ended and time.monotonic() < deadline:
        ep.libHandleEvents(10)
        if call.connected and hang_up_at is None:
            hang_up_at = time.monotonic() + hold
        if hang_up_at is not None and time.monotonic() >= hang_up_at and not call.ended:
            info = call.getInfo()
            for index, media in enumerate(info.media):
                if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                    rx = call.getStreamStat(index).rtcp.rxStat.pkt
            call.hangup(pj.CallOpParam(True))
            hang_up_at = float("inf")
    result = {"connected": call.connected, "status": call.status, "reason": call.reason, "rx_packets": rx}
    del call
    account.shutdown()
    ep.libDestroy()
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], float(sys.argv[3]))), flush=True)
