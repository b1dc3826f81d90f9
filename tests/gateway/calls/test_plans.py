"""The plans of the calls domain's hot and periodic statements on PostgreSQL.

``calls`` and ``call_legs`` keep every call ever made (a gateway at 20 calls a second adds 1.7 M
a day), and a few are live. The statements a call runs (its leg events, the API's commands) and
the periodic ones (the sweeper every second, the SIP controller's timers several times a second)
must reach those tables through an index that stays small or selective as they grow: at 10,000
and 1,000,000 rows, never analysed (autovacuum off, as on the 2-core machines) and analysed, as
one-off statements and as the generic plans of prepared ones (tests/support/plans.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from gateway.calls import repository
from gateway.calls.lifecycle import CallState
from gateway.core.db import Database, utcnow
from tests.support.call_rows import CALL_TABLES, load_calls
from tests.support.plans import analyse, analysed_rows, failures_of
from tests.support.postgres import Postgres
from tests.support.secrets_keys import TEST_SECRETS_KEYS

pytestmark = pytest.mark.postgres

PROCESS = "sip-plans"
LIVE_EVERY = 2000  # one call in 2,000 is live; the rest ended


@dataclass(frozen=True)
class Loaded:
    database: Database
    rows: int
    resource_id: str


@pytest.fixture(scope="module", params=[10_000, 1_000_000], ids=["10k", "1M"])
def loaded(request: pytest.FixtureRequest, postgres: Postgres) -> Iterator[Loaded]:
    database = Database(postgres.new_database())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRUNKLINE_SECRETS_KEYS", TEST_SECRETS_KEYS)  # the resource's keys are sealed
        resource_id = load_calls(database, request.param, PROCESS, LIVE_EVERY)
    yield Loaded(database, request.param, resource_id)
    database.dispose()


def _some(loaded: Loaded) -> int:
    """A call in the middle of the table, ended."""
    return loaded.rows // 2 + 5


Run = Callable[[Session], object]


def leg_event(loaded: Loaded) -> tuple[Run, str]:
    """The SIP controller's reading for every leg event: the call locked through the leg, then
    the call's legs."""

    def run(session: Session) -> object:
        call = repository.lock_call_of_leg(session, f"leg-{_some(loaded)}")
        return repository.legs_of(session, call.id if call else "call-0")

    return run, "ix_call_legs_call_id"


def command_on_call(loaded: Loaded) -> tuple[Run, str]:
    """:answer, DELETE, :terminate and the media commands lock the call by id and resource."""

    def run(session: Session) -> object:
        repository.lock_call(session, f"call-{_some(loaded)}", loaded.resource_id)
        return repository.find_call(session, f"call-{_some(loaded)}", loaded.resource_id)

    return run, "pk_calls"


def active_legs(loaded: Loaded) -> tuple[Run, str]:
    def run(session: Session) -> object:
        repository.active_leg(session, f"call-{_some(loaded)}")
        return repository.active_legs(session, f"call-{_some(loaded)}")

    return run, "ix_call_legs_call_id"


def placement(loaded: Loaded) -> tuple[Run, str]:
    def run(session: Session) -> object:
        repository.claim_placement(session, f"leg-{LIVE_EVERY * 3 + 3}", PROCESS)
        repository.set_leg_worker(session, f"leg-{LIVE_EVERY * 3 + 3}", 7)
        return repository.leg_by_invitation(session, f"call-{LIVE_EVERY}", f"invitation-{LIVE_EVERY}")

    return run, "pk_call_legs"


def rings_due(loaded: Loaded) -> tuple[Run, str]:
    """The controller's ring timer, when a call it offered passed its deadline."""

    def run(session: Session) -> object:
        return repository.rings_due(session, PROCESS, utcnow(), CallState.OFFERED.value)

    return run, "ix_calls_live"


def invitations_due(loaded: Loaded) -> tuple[Run, str]:
    """The controller's tick (several times a second): participants that did not answer in time."""

    def run(session: Session) -> object:
        return repository.invitations_due(session, PROCESS, utcnow())

    return run, "ix_call_legs_placing"


def sweep(loaded: Loaded) -> tuple[Run, str]:
    """The sweeper, every second: unplaced, lost and stuck calls, and silent processes."""

    def run(session: Session) -> object:
        now = utcnow()
        repository.unplaced_calls_due(session, now - timedelta(seconds=30), 100)
        repository.calls_of_lost_processes(session, now - timedelta(seconds=10), 100)
        repository.calls_stuck_since(
            session,
            (CallState.ANSWERING.value, CallState.DISCONNECTING.value),
            now - timedelta(seconds=30),
            100,
        )
        return repository.purge_processes(session, now - timedelta(minutes=10))

    return run, "ix_calls_live"


HOT: dict[str, Callable[[Loaded], tuple[Run, str]]] = {
    "leg event: call by leg, its legs": leg_event,
    "API command: call by id and resource": command_on_call,
    "the call's active legs": active_legs,
    "outbound placement": placement,
    "ring timer": rings_due,
    "participant invitation timer": invitations_due,
    "sweeper": sweep,
}


@pytest.mark.parametrize("statistics", ["never analysed", "analysed"])
def test_calls_statements_use_small_or_selective_indexes(loaded: Loaded, statistics: str) -> None:
    engine = loaded.database.engine
    if statistics == "analysed":
        analyse(engine)
    else:
        assert analysed_rows(engine, "calls") == 0, "this database was analysed already (autovacuum?)"
    failures = failures_of(engine, {name: make(loaded) for name, make in HOT.items()}, CALL_TABLES)
    assert not failures, f"{loaded.rows} rows, {statistics}:\n" + "\n\n".join(failures)
