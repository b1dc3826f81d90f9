"""The calls' sweeper: ends the calls nobody else would end.

Three bounds, each fed to the call state machine (gateway.calls.lifecycle) as an input:

- an outbound call whose first INVITE no SIP process took within ``place_timeout``
  (``PlaceTimeout``: none is running) ends with ``CreateCallFailed``;
- the live calls of a SIP process whose heartbeat (``sip_processes``, refreshed every second by
  sip.control.process) is older than ``process_lost``, or that stopped, end with
  ``CallDisconnected`` (``ProcessLost``): crash, SIGKILL, host loss;
- a call left ``answering`` or ``disconnecting`` for ``command_timeout`` (its worker command was
  lost, e.g. the process restarted between the publish and the take) ends (``CommandTimeout``).

It runs in the events worker (``trunkline worker``, beside the dispatcher), not in the SIP
processes: the first rule is about the time when no SIP process runs, and a single SIP process
that dies (the ``trunkline up`` case) must not be the one to sweep its own calls. Several
workers may sweep at once: each change locks the call and re-checks it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter

from gateway.calls import repository, transitions
from gateway.calls.lifecycle import CallState, CommandTimeout, Input, PlaceTimeout, ProcessLost
from gateway.core.db import Database, utcnow
from gateway.core.loop_thread import LoopThread
from gateway.core.metrics import owned_by
from sip.worker.messages import Command

log = logging.getLogger("trunkline.calls.sweeper")

CALLS_SWEPT = Counter(
    "trunkline_calls_swept_total",
    "Calls the sweeper ended: no SIP process took them (notPlaced), their SIP process was lost "
    "(sipProcessLost), or their answer/hang-up was never carried out (commandTimeout).",
    ["reason"],
)
owned_by("worker", CALLS_SWEPT)

BATCH = 200
PURGE_AFTER = timedelta(days=1)  # a silent process's row is forgotten once it holds no live call


@dataclass(frozen=True)
class SweepBounds:
    place_timeout: timedelta
    process_lost: timedelta
    command_timeout: timedelta


class CallSweeper(LoopThread):
    """One pass at a time (:meth:`run_once`), or a thread calling it every ``interval``."""

    thread_name = "trunkline-call-sweeper"

    def __init__(
        self,
        database: Database,
        send: Callable[[str, Command], None],
        bounds: SweepBounds,
        interval: float = 1.0,
    ) -> None:
        self.database = database
        self.send = send
        self.bounds = bounds
        self.interval = interval
        super().__init__()

    def run_once(self, now: datetime | None = None) -> int:
        """End what is due; returns how many calls it ended."""
        now = now or utcnow()
        bounds = self.bounds
        place_since = now - bounds.place_timeout
        lost_since = now - bounds.process_lost
        command_since = now - bounds.command_timeout
        with self.database.read_session() as session:
            unplaced = repository.unplaced_calls_due(session, place_since, BATCH)
            lost = repository.calls_of_lost_processes(session, lost_since, BATCH)
            stuck = repository.calls_stuck_since(
                session, (CallState.ANSWERING.value, CallState.DISCONNECTING.value), command_since, BATCH
            )
        ended = 0
        seconds = bounds.place_timeout.total_seconds()
        for call_id in unplaced:
            ended += self._end(call_id, PlaceTimeout(seconds), now, since=place_since)
        for call_id, process in lost:
            ended += self._end(call_id, ProcessLost(process, bounds.process_lost.total_seconds()), now)
        for call_id in stuck:
            timeout = CommandTimeout(bounds.command_timeout.total_seconds())
            ended += self._end(call_id, timeout, now, since=command_since)
        with self.database.session() as session:
            repository.purge_processes(session, now - PURGE_AFTER)
        return ended

    def _end(self, call_id: str, event: Input, now: datetime, since: datetime | None = None) -> int:
        with self.database.session() as session:
            call = repository.lock_call(session, call_id)
            if call is None or call.state == CallState.ENDED.value:
                return 0
            if since is not None and call.state_since is not None and call.state_since > since:
                return 0  # it moved on between the listing and the lock
            applied = transitions.apply(session, call, event, now)
            reason = applied.transition.end_reason
        if applied.transition.state is not CallState.ENDED or reason is None:
            return 0
        CALLS_SWEPT.labels(reason.value).inc()
        log.warning(
            "call %s ended by the sweeper: %s (%s)",
            call_id,
            reason.value,
            applied.transition.result_message or "no callback",
        )
        for command in applied.commands if applied.process else ():  # the call's leg and its other legs
            try:
                self.send(applied.process, command)
            except Exception:  # the broker is away: the call row is the truth already
                log.exception("call %s: the sweeper's %s was not sent", call_id, command)
        return 1

    def loop(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.run_once()
            except Exception:
                log.exception("call sweep failed")
