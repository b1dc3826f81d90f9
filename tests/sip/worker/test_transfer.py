"""Transfer: REFER to a SIPp callee that accepts it (202, NOTIFY sipfrag 100 then 200) or refuses it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sip.worker.messages import CallState, CommandFailed, Hangup, MakeCall, Transfer, TransferProgress
from sip.worker.pool import WorkerPool
from tests.sip.support import HOST, SCENARIOS, Sipp, events_until, next_event

pytestmark = [pytest.mark.sip, pytest.mark.timeout(60)]

TARGET = "sip:+15559990000@127.0.0.1"  # the callee scenarios check it in Refer-To


def connected_call(pool: WorkerPool, sipp: Sipp, call_id: str) -> None:
    time.sleep(0.3)  # SIPp binds its port
    target = f"sip:+15551112222@{HOST}:{sipp.port}"
    pool.send(MakeCall(call_id, target, "sip:+15557770000@trunkline.invalid"))
    events_until(pool, call_id, CallState.CONNECTED)


def test_an_accepted_refer_reports_the_notified_progress(pool: WorkerPool, tmp_path: Path) -> None:
    sipp = Sipp(tmp_path, SCENARIOS / "callee_refer.xml")
    try:
        connected_call(pool, sipp, "xfer-1")
        pool.send(Transfer("xfer-1", TARGET))
        progress = [next_event(pool, TransferProgress, "xfer-1")]
        while not progress[-1].final:
            progress.append(next_event(pool, TransferProgress, "xfer-1"))
        # pjsua reports the 202 as "100 Accepted", then each NOTIFY's sipfrag status
        assert [(p.status, p.final, p.reason) for p in progress] == [
            (100, False, "Accepted"),
            (100, False, "Trying"),
            (200, True, "OK"),
        ], progress
        pool.send(Hangup("xfer-1"))
        events_until(pool, "xfer-1", CallState.DISCONNECTED)
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


@pytest.mark.parametrize(("status", "phrase"), [(603, "Declined"), (405, "Method Not Allowed")])
def test_a_refused_refer_is_a_final_progress_with_its_status(
    pool: WorkerPool, tmp_path: Path, status: int, phrase: str
) -> None:
    scenario = tmp_path / "callee_refer_refused.xml"
    text = (SCENARIOS / "callee_refer_refused.xml").read_text()
    scenario.write_text(text.replace("{refer_status}", f"{status} {phrase}"))
    sipp = Sipp(tmp_path, scenario)
    try:
        connected_call(pool, sipp, "xfer-2")
        pool.send(Transfer("xfer-2", TARGET))
        progress = next_event(pool, TransferProgress, "xfer-2")
        assert (progress.status, progress.final) == (status, True), progress
        assert pool.holder("xfer-2") is not None  # the call itself goes on
        pool.send(Hangup("xfer-2"))
        events_until(pool, "xfer-2", CallState.DISCONNECTED)
        assert sipp.wait() == 0, sipp.errors()
    finally:
        sipp.kill()


def test_a_transfer_of_an_unknown_call_fails(pool: WorkerPool) -> None:
    pool.send(Transfer("nope", TARGET))
    assert next_event(pool, CommandFailed, "nope").command == "Transfer"
