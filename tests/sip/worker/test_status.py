"""The status file of `trunkline sip`: round trip, staleness, refusal of other files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.worker.status import PoolStatus, WorkerStatus, dumps, loads, read, write

workers = st.builds(
    WorkerStatus,
    index=st.integers(0, 200),
    pid=st.none() | st.integers(1, 2**22),
    sip_port=st.integers(1, 65535),
    up=st.booleans(),
    calls=st.integers(0, 4),
    free=st.integers(0, 4),
    restarts=st.integers(0, 100),
)
statuses = st.builds(
    PoolStatus,
    written_at=st.floats(0, 2e9),
    edge=st.sampled_from(["kamailio", "none"]),
    address=st.just("127.0.0.1:5060"),
    workers=st.lists(workers, max_size=5).map(tuple),
)


@given(statuses)
def test_status_round_trips(status: PoolStatus) -> None:
    assert loads(dumps(status)) == status


def test_file_is_written_and_read_and_goes_stale(tmp_path: Path) -> None:
    path = tmp_path / "sip-status.json"
    status = PoolStatus(1000.0, "none", "127.0.0.1:5060", (WorkerStatus(0, 42, 5060, True, 1, 3, 0),))
    write(path, status)
    assert read(path) == status
    assert (status.calls, status.free) == (1, 3)
    assert not status.is_stale(now=1004.0)
    assert status.is_stale(now=1006.0)
    assert [p.name for p in tmp_path.iterdir()] == ["sip-status.json"]


@pytest.mark.parametrize(
    "text", ["{}", "[]", '{"written_at":1,"edge":"none","address":"x","workers":[{"a":1}]}']
)
def test_other_files_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)
