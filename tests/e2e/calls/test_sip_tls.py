"""SIP TLS end to end: ``trunkline sip --edge kamailio --tls-port N`` terminates a carrier's TLS
at Kamailio with a certificate from the data directory's own CA, the INVITE reaches a worker,
the app answers the IncomingCall with the official SDK and the call connects. The carrier is
pjsua2 over TLS (tests/sip/tls_party.py): Debian's SIPp is built without TLS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.calls.conftest import NUMBER, VoiceStack, wait
from tests.e2e.helpers import stop_process, tcp_listening
from tests.sip.support import HOST, free_udp_block, require
from tests.sip.test_kamailio_tls import ROOT, TLS_MODULE

pytestmark = [pytest.mark.sip, pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

CONNECTED = "Microsoft.Communication.CallConnected"


def test_an_inbound_call_over_sip_tls_through_kamailio_is_answered(
    stack: VoiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("kamailio")
    # the app's SDK trusts this stack's CA (a session fixture of tests/e2e may have set its own)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stack.ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(stack.ca_file))
    assert TLS_MODULE.exists(), "apt-get install kamailio-tls-modules"
    listen = free_udp_block(3, tcp=True)  # UDP, RPC, and the TLS port
    tls_port = listen + 2
    process = stack.start(
        "sip-tls", "sip", "--edge", "kamailio", "--workers", "1", "--listen", f"{HOST}:{listen}",
        "--tls-port", str(tls_port), "--rpc-port", str(listen + 1),
        "--worker-port", str(free_udp_block(1)), "--rtp-port", str(free_udp_block(40)),
    )  # fmt: skip
    app = stack.app
    answered: list[Any] = []

    def answer(event: dict[str, Any]) -> None:
        assert app.client is not None
        answered.append(app.client.answer_call(event["incomingCallContext"], app.callback_url))

    app.on_incoming = answer
    try:
        wait(lambda: tcp_listening(tls_port), 30, what="Kamailio's TLS port")
        ca_file = Path(stack.env["TRUNKLINE_DATA_DIR"]) / "sip-tls" / "ca.pem"
        assert ca_file.exists()  # the edge's certificate comes from the data directory's CA
        target = f"sip:{NUMBER}@{HOST}:{tls_port};transport=tls"
        caller = subprocess.Popen(
            [sys.executable, "-m", "tests.sip.tls_party", "call", target, str(ca_file), "2"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = caller.communicate(timeout=60)
        finally:
            if caller.poll() is None:
                caller.kill()
        assert caller.returncode == 0, err[-3000:]
        result = json.loads(out.strip().splitlines()[-1])
        assert result["connected"], (result, stack.log("sip-tls"))
        assert result["rx_packets"] > 0, result
        call_id = answered[0].call_connection_id
        wait(lambda: CONNECTED in app.callback_types(call_id), 20, what="CallConnected")
        wait(
            lambda: "Microsoft.Communication.CallDisconnected" in app.callback_types(call_id),
            20,
            what="CallDisconnected after the caller's BYE over TLS",
        )
    finally:
        stop_process(process)
        stack.processes.pop("sip-tls", None)
