"""SIP TLS at the Kamailio edge, the carrier being pjsua2 over TLS (tests/sip/tls_party.py;
Debian's SIPp has no TLS): a call in over TLS, which Kamailio terminates with the system's
OpenSSL and dispatches to a pjsua2 worker over UDP; and a worker's call out to a
``transport=tls`` trunk, which leaves Kamailio over TLS, checking the carrier's certificate."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.core.tls import ensure_local_tls
from sip.edge import SYSTEM_CA_LIST, EdgeTls
from sip.worker.main import EdgeKind, SipOptions, SipRuntime, run_sip, start_sip
from sip.worker.messages import Answer, CallState, CallStateChanged, Hangup, IncomingCall, MakeCall, Ring
from sip.worker.pool import WorkerEvent
from tests.sip.support import HOST, free_udp_block, require

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
TLS_MODULE = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so")


def test_an_inbound_call_over_tls_reaches_a_worker_through_kamailio(tmp_path: Path) -> None:
    require("kamailio")
    assert TLS_MODULE.exists(), "Kamailio's tls module is missing: apt-get install kamailio-tls-modules"
    files = ensure_local_tls(tmp_path / "tls", [HOST])
    listen = free_udp_block(3, tcp=True)  # UDP, RPC, and the TLS port
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
            [sys.executable, "-m", "tests.sip.tls_party", "call", target, str(files.ca_file), "1.5"],
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


@pytest.mark.parametrize("trusted", [True, False], ids=["carrier-trusted", "carrier-untrusted"])
def test_a_call_to_a_tls_trunk_leaves_kamailio_over_tls(tmp_path: Path, trusted: bool) -> None:
    require("kamailio")
    assert TLS_MODULE.exists(), "Kamailio's tls module is missing: apt-get install kamailio-tls-modules"
    files = ensure_local_tls(tmp_path / "tls", [HOST])
    listen = free_udp_block(4)
    tls_port, callee_port = listen + 2, listen + 3
    callee = subprocess.Popen(
        [sys.executable, "-m", "tests.sip.tls_party", "answer", str(callee_port), str(files.cert_file),
         str(files.key_file)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    (tmp_path / "kamailio").mkdir()
    runtime = start_sip(
        SipOptions(
            workers=1,
            edge=EdgeKind.KAMAILIO,
            listen=f"{HOST}:{listen}",
            worker_sip_port=free_udp_block(1),
            rtp_port=free_udp_block(40),
            rpc_port=listen + 1,
            kamailio_dir=tmp_path / "kamailio",
            kamailio_children=2,
            tls_port=tls_port,
            # the carrier's certificate is checked against this CA: its issuer, or the system's
            # list, which does not know the test CA
            tls=EdgeTls(
                str(files.cert_file),
                str(files.key_file),
                str(files.ca_file) if trusted else SYSTEM_CA_LIST,
                verify_carriers=True,
            ),
        )
    )
    try:
        assert callee.stdout is not None
        for _ in range(50):  # pjlib prints its start-up on stdout first
            line = callee.stdout.readline()
            if not line or line.strip() == "ready":
                break
        assert line.strip() == "ready", callee.stderr.read() if callee.stderr else ""
        target = f"sip:+15550002@{HOST}:{callee_port};transport=tls"
        assert runtime.send(MakeCall("out-tls", target, f"sip:+15557770000@{HOST}")) == 0
        states: list[CallStateChanged] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
            s.state in (CallState.CONNECTED, CallState.DISCONNECTED) for s in states
        ):
            try:
                item = runtime.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if isinstance(item.event, CallStateChanged) and item.event.call_id == "out-tls":
                states.append(item.event)
        if not trusted:
            # Kamailio refuses the carrier's certificate: no TLS connection, the INVITE fails
            assert states[-1].state is CallState.DISCONNECTED, states
            assert states[-1].status >= 400, states
            callee.kill()
            assert '"answered": true' not in (callee.communicate(timeout=10)[0] or "")
            return
        assert CallState.CONNECTED in [s.state for s in states], states
        # The ACK and a BYE sent right after it may cross Kamailio in either order (two of its
        # processes can take one each); a callee that sees the BYE first never confirms. Hang up
        # once the callee has the ACK, so the test asks about TLS, not about that race.
        for _ in range(50):
            line = callee.stdout.readline()
            if not line or line.strip() == "confirmed":
                break
        assert line.strip() == "confirmed", callee.stderr.read() if callee.stderr else ""
        runtime.send(Hangup("out-tls"))
        out, err = callee.communicate(timeout=20)
        result = json.loads(out.strip().splitlines()[-1])
        assert result["answered"], (result, err[-2000:])
        assert result["transport"] == "TLS"  # Kamailio's hop to the carrier
        assert result["request_uri"].startswith(f"sip:+15550002@{HOST}:{callee_port}")
    finally:
        runtime.stop()
        if callee.poll() is None:
            callee.kill()
            callee.wait(5)
