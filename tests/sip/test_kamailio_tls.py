"""SIP TLS at the Kamailio edge: a carrier calls over TLS (pjsua2 as the caller, since Debian's
SIPp has no TLS), Kamailio terminates it with the system's OpenSSL and dispatches the INVITE to
a pjsua2 worker over UDP, which answers; the call connects with RTP and the caller hangs up."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway.core.tls import ensure_local_tls
from sip.edge import EdgeTls
from sip.worker.main import EdgeKind, SipRuntime, run_sip
from sip.worker.messages import Answer, CallState, CallStateChanged, IncomingCall, Ring
from sip.worker.pool import WorkerEvent
from tests.sip.support import HOST, free_udp_block, require

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
TLS_MODULE = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so")


def test_an_inbound_call_over_tls_reaches_a_worker_through_kamailio(tmp_path: Path) -> None:
    require("kamailio")
    assert TLS_MODULE.exists(), "Kamailio's tls module is missing: apt-get install kamailio-tls-modules"
    files = ensure_local_tls(tmp_path / "tls", [HOST])
    listen = free_udp_block(3)  # UDP, RPC, and the TLS port
    tls_port = listen + 2
    seen: list[WorkerEvent] = []
    ended = threading.Event()
    up = threading.Event()
    stop = threading.Event()

    def handler(item: WorkerEvent, runtime: SipRuntime) -> None:
        seen.append(item)
        if isinstance(item.event, IncomingCall):
            runtime.send(Ring(item.event.call_id))
            runtime.send(Answer(item.event.call_id))
        elif isinstance(item.event, CallStateChanged) and item.event.state is CallState.DISCONNECTED:
            ended.set()

    thread = threading.Thread(
        target=run_sip,
        args=(2, EdgeKind.KAMAILIO, f"{HOST}:{listen}"),
        kwargs={
            "handler": handler,
            "stop": stop,
            "started": lambda runtime: up.set(),
            "worker_sip_port": free_udp_block(2),
            "rtp_port": free_udp_block(80),
            "rpc_port": listen + 1,
            "kamailio_dir": tmp_path / "kamailio",
            "kamailio_children": 2,
            "tls_port": tls_port,
            "tls": EdgeTls(str(files.cert_file), str(files.key_file), str(files.ca_file)),
        },
        daemon=True,
    )
    (tmp_path / "kamailio").mkdir()
    thread.start()
    try:
        assert up.wait(20), "run_sip did not start"
        target = f"sip:+15550001@{HOST}:{tls_port};transport=tls"
        caller = subprocess.run(
            [sys.executable, "-m", "tests.sip.tls_caller", target, str(files.ca_file), "1.5"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=40,
            check=False,
        )
        assert caller.returncode == 0, caller.stderr[-3000:]
        result = json.loads(caller.stdout.strip().splitlines()[-1])
        assert result["connected"], result
        assert result["rx_packets"] > 0, result  # the worker's audio came back over RTP
        assert ended.wait(10)
        [incoming] = [e.event for e in seen if isinstance(e.event, IncomingCall)]
        assert incoming.to_uri.startswith("sip:+15550001@")
        assert incoming.source.startswith(f"{HOST}:")  # the caller's address, from the edge's header
        assert any(
            isinstance(e.event, CallStateChanged) and e.event.state is CallState.CONNECTED for e in seen
        )
        config = (tmp_path / "kamailio" / "kamailio.cfg").read_text()
        assert f"listen=tls:{HOST}:{tls_port}" in config
    finally:
        stop.set()
        thread.join(15)
