"""REGISTER to a carrier: the registrar worker (worker 0) registers a trunk with digest
credentials, facing the carrier itself (``--edge none``) or through Kamailio, and refreshes
the binding; SIPp is the registrar (tests/sip/scenarios/registrar_auth.xml: 401 first, then
it verifies each Authorization against the password)."""

from __future__ import annotations

import queue
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sip.worker.main import EdgeKind, SipOptions, SipRuntime, start_sip
from sip.worker.messages import Register, RegistrationState, Unregister
from tests.sip.support import HOST, SCENARIOS, Sipp, free_udp_block, require

pytestmark = [pytest.mark.sip, pytest.mark.timeout(90)]

PASSWORD = "s3cret-pass"


def registrar(tmp_path: Path, contact: str, password: str = PASSWORD) -> Sipp:
    scenario = (SCENARIOS / "registrar_auth.xml").read_text()
    scenario = scenario.replace("__CONTACT__", re.escape(contact)).replace("__PASSWORD__", password)
    path = tmp_path / "registrar.xml"
    path.write_text(scenario)
    return Sipp(tmp_path, path)


@pytest.fixture
def sip_runtime(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SipRuntime]:
    edge, workers = request.param
    if edge is EdgeKind.KAMAILIO:
        require("kamailio")
    listen = free_udp_block(2)
    options = SipOptions(
        workers=workers,
        edge=edge,
        listen=f"{HOST}:{listen}",
        worker_sip_port=free_udp_block(workers),
        rtp_port=free_udp_block(40 * workers),
        rpc_port=listen + 1,
        kamailio_dir=tmp_path,
        kamailio_children=2,
    )
    runtime = start_sip(options)
    try:
        yield runtime
    finally:
        runtime.stop()


def states(runtime: SipRuntime, trunk: str, count: int, timeout: float = 20) -> list[RegistrationState]:
    found: list[RegistrationState] = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        try:
            item = runtime.events.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if isinstance(item.event, RegistrationState) and item.event.trunk == trunk:
            assert item.worker == 0  # the registrar worker
            found.append(item.event)
    return found


def register(runtime: SipRuntime, sipp: Sipp, password: str = PASSWORD) -> None:
    contact = f"<sip:trunk-user@{runtime.address}>"
    worker = runtime.send(
        Register(
            "carrier-1",
            f"sip:{HOST}:{sipp.port}",
            f"sip:trunk-user@{HOST}",
            contact,
            "trunk-user",
            password,
            expires=60,
        )
    )
    assert worker == 0


@pytest.mark.parametrize(
    "sip_runtime", [(EdgeKind.NONE, 1), (EdgeKind.KAMAILIO, 2)], indirect=True, ids=["no-edge", "kamailio"]
)
def test_a_trunk_registers_with_digest_and_refreshes(tmp_path: Path, sip_runtime: SipRuntime) -> None:
    # the carrier must see the trunk-facing address (Kamailio's) as the Contact, never a worker's
    sipp = registrar(tmp_path, f"sip:trunk-user@{sip_runtime.address}")
    try:
        register(sip_runtime, sipp)
        first, refreshed = states(sip_runtime, "carrier-1", 2)
        assert (first.registered, first.status) == (True, 200)
        assert 0 < first.expires <= 6  # the registrar's grant, not the 60 asked for
        assert (refreshed.registered, refreshed.status) == (True, 200)
        assert sipp.wait(20) == 0, sipp.errors()
    finally:
        sipp.kill()
    sip_runtime.send(Unregister("carrier-1"))


@pytest.mark.parametrize("sip_runtime", [(EdgeKind.NONE, 1)], indirect=True, ids=["no-edge"])
def test_a_refused_digest_is_reported_with_the_registrar_status(
    tmp_path: Path, sip_runtime: SipRuntime
) -> None:
    sipp = registrar(tmp_path, f"sip:trunk-user@{sip_runtime.address}")
    try:
        register(sip_runtime, sipp, password="not-the-password")
        [refused] = states(sip_runtime, "carrier-1", 1)
        assert (refused.registered, refused.status) == (False, 403)
        assert sipp.wait(20) != 0  # the registrar saw a wrong digest
    finally:
        sipp.kill()
