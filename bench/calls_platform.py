"""bench/calls.py's platform mode: the whole stack as real processes, an app on its webhook.

``trunkline api`` (TLS), ``trunkline worker`` (events, on a private redis-server), ``trunkline sip
--edge kamailio --workers N``, PostgreSQL; a resource owning the called number with an Event
Grid subscription to an https app in this process (tests/e2e/calls/stack.py builds all of it)
that answers every IncomingCall at once with the official ``CallAutomationClient`` and receives
the callbacks; SIPp calls in as the carrier (bench/calls_carrier.py).

Where the time goes is read from stamps that already exist, joined per call by SIP Call-ID and
serverCallId: SIPp's INVITE, 180 and 200 OK; the database's call leg (the controller took the
INVITE), outbox (dispatched) and delivery attempt (the HTTP POST began); the app's IncomingCall
received, the SDK's request sent (``raw_request_hook``: the SDK's own client-side work is the
app's), the API's answer returned, and CallConnected received.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bench.calls_app import CallRecord
from bench.calls_carrier import Carrier, CarrierLoad, failures_by_status
from bench.calls_report import SCHEDULE_INTERVAL, Percentiles, RunInput, _fmt
from bench.procstat import Sampler, descendants, memory_kb
from gateway.calls.models import Call, CallLeg
from gateway.events.models import Delivery, DeliveryAttempt, OutboxEvent
from tests.e2e.calls.stack import NUMBER, VoiceStack, running_voice_stack
from tests.sip.support import free_udp_block

INCOMING_CALL = "Microsoft.Communication.IncomingCall"
CONNECTED = "Microsoft.Communication.CallConnected"


@dataclass
class Answered:
    """What the app saw of one IncomingCall (``time.time()`` stamps)."""

    received_at: float
    request_sent_at: float | None = None
    returned_at: float | None = None
    call_connection_id: str = ""
    error: str = ""


@dataclass
class AnsweringWebhookApp:
    """Answers each IncomingCall the stack's app receives, from the webhook's own thread."""

    stack: VoiceStack
    answered: dict[str, Answered] = field(default_factory=dict)  # by serverCallId
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any]) -> None:
        record = Answered(float(event["_received_at"]))
        with self.lock:
            self.answered[event["serverCallId"]] = record

        def sent(_request: object) -> None:
            record.request_sent_at = time.time()

        client = self.stack.app.client
        assert client is not None
        try:
            properties = client.answer_call(
                event["incomingCallContext"], self.stack.app.callback_url, raw_request_hook=sent
            )
            record.call_connection_id = properties.call_connection_id or ""
        except Exception as exc:  # counted and shown, the run goes on
            record.error = repr(exc)[:300]
        record.returned_at = time.time()


@dataclass
class CallStamps:
    """One call's path, wall clock seconds; None where a stamp is missing."""

    sip_call_id: str
    worker: int | None
    invite: float
    ringing: float | None
    ok: float | None
    offered: float | None = None  # the controller took the INVITE (call leg created)
    dispatched: float | None = None  # outbox row fanned out to the subscription
    delivery_started: float | None = None  # the events worker began the HTTP POST
    delivered: float | None = None  # the app received IncomingCall
    answer_sent: float | None = None  # the SDK sent :answer
    answer_returned: float | None = None
    connected: float | None = None  # the controller committed CallConnected
    connected_delivered: float | None = None  # the app received CallConnected


def _pg_backends(stack: VoiceStack) -> list[int]:
    with stack.database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        return [int(r[0]) for r in rows]


class PlatformGroups:
    """The process groups the sampler reads, from the stack's pids and its status file."""

    def __init__(self, stack: VoiceStack) -> None:
        self.stack = stack
        self.carrier: Carrier | None = None
        self._backends: list[int] = []
        self._backends_at = 0.0

    def workers(self) -> list[int]:
        try:
            return [w["pid"] for w in self.stack.sip_status()["workers"] if w["pid"]]
        except (OSError, ValueError, KeyError):
            return []

    def calls(self) -> int:
        try:
            return sum(int(w["calls"]) for w in self.stack.sip_status()["workers"])
        except (OSError, ValueError, KeyError):
            return 0

    def _role(self, role: str) -> list[int]:
        process = self.stack.processes.get(role)
        return descendants(process.pid) if process is not None and process.poll() is None else []

    def kamailio(self) -> list[int]:
        process = self.stack.processes.get("sip")
        if process is None:
            return []
        workers = set(self.workers())
        return [p for p in descendants(process.pid) if p != process.pid and p not in workers]

    def postgres(self) -> list[int]:
        if time.monotonic() - self._backends_at > 5:  # the pools' connections live long
            self._backends, self._backends_at = _pg_backends(self.stack), time.monotonic()
        return self._backends

    def sampler(self) -> Sampler:
        redis = self.stack.redis.process
        sip = self.stack.processes["sip"]
        return Sampler(
            {
                "api": lambda: self._role("api"),
                "events worker": lambda: self._role("worker"),
                "sip supervisor (+ controller)": lambda: [sip.pid] if sip.poll() is None else [],
                "workers": self.workers,
                "kamailio": self.kamailio,
                "postgres (this database's backends)": self.postgres,
                "redis": lambda: [redis.pid] if redis is not None and redis.poll() is None else [],
                "sipp (carrier)": lambda: (
                    [self.carrier.pid] if self.carrier is not None and self.carrier.running() else []
                ),
                "app (this process)": lambda: [os.getpid()],
            },
            calls=self.calls,
        )


@dataclass(frozen=True, slots=True)
class PlatformRun:
    run: RunInput
    stamps: list[CallStamps]
    failures: dict[str, int]
    answer_errors: list[str]
    rtp: dict[str, float]


def stack_options(args: argparse.Namespace) -> tuple[dict[str, str], tuple[str, ...]]:
    """The stack's environment and ``trunkline sip`` arguments for a platform or media run."""
    extra_env = {
        "TRUNKLINE_CALL_RING_TIMEOUT_SECONDS": "30",
        "TRUNKLINE_EVENTS_DISPATCH_INTERVAL_SECONDS": f"{args.dispatch_interval:g}",
        # production's, not the test stack's fast one (a retry is no part of a clean run)
        "TRUNKLINE_EVENTS_SCHEDULE_INTERVAL_SECONDS": f"{SCHEDULE_INTERVAL:g}",
        "TRUNKLINE_LOG_LEVEL": args.log_level,
        "TRUNKLINE_SIP_EVENT_LANES": str(args.event_lanes),
        "TRUNKLINE_EVENTS_LOCAL_DELIVERIES": "false" if args.broker_deliveries else "true",
    }
    return extra_env, ("--poll-ms", str(args.poll_ms), "--media-poll-seconds", f"{args.media_poll_seconds:g}")


def run_platform(args: argparse.Namespace, load: CarrierLoad) -> PlatformRun:
    directory = Path(tempfile.mkdtemp(prefix="trunkline-bench-platform-"))
    extra_env, sip_args = stack_options(args)
    load_before = _load_average()
    started = time.monotonic()
    with running_voice_stack(
        directory,
        edge="kamailio",
        workers=args.workers,
        database_prefix="trunkline_bench_calls",
        extra_env=extra_env,
        sip_args=sip_args,
    ) as stack:
        start_seconds = time.monotonic() - started
        app = AnsweringWebhookApp(stack)
        stack.app.on_incoming = app
        if args.warmup_calls:
            _warm_up(stack, directory / "warmup", args.warmup_calls, args.carrier_rtp)
        groups = PlatformGroups(stack)
        sampler = groups.sampler()
        rtp_before = stack.rtp_packets()
        idle_first = sampler.sample()
        time.sleep(args.idle_seconds)
        idle_last = sampler.sample()
        sampler.samples.clear()
        carrier_dir = directory / "sipp"
        carrier_dir.mkdir()
        carrier = Carrier(
            carrier_dir,
            f"127.0.0.1:{stack.sip_port}",
            load,
            port=free_udp_block(1),
            media_port=free_udp_block(4),
            number=NUMBER,
            rtp=args.carrier_rtp,
        )
        groups.carrier = carrier
        sampler.sample()
        sampler.start()
        peak_memory = _watch_peak(groups, carrier)
        exit_code = carrier.wait()
        time.sleep(max(2.0, args.media_poll_seconds + 1))  # the last callbacks and RTP counts
        sampler.stop()
        sampler.sample()
        result = carrier.result(exit_code)
        rtp_after = stack.rtp_packets()
        stamps = _stamps(stack, app, result.setups)
        records = [_as_record(s) for s in stamps]
        run = RunInput(
            mode="platform: SIPp → Kamailio → workers → API, events, app (CallAutomationClient)",
            workers=args.workers,
            poll_ms=args.poll_ms,
            load=load,
            carrier=result,
            calls=records,
            command_failures=0,
            restarts=sum(int(w["restarts"]) for w in stack.sip_status()["workers"]),
            samples=list(sampler.samples),
            idle=(idle_first, idle_last),
            worker_memory_kb=peak_memory[0],
            other_memory_kb=peak_memory[1],
            start_seconds=start_seconds,
            load_average=(load_before, _load_average()),
        )
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        return PlatformRun(
            run,
            stamps,
            failures_by_status(carrier_dir),
            [a.error for a in app.answered.values() if a.error],
            {d: rtp_after.get(d, 0) - rtp_before.get(d, 0) for d in ("received", "sent")},
        )


def _warm_up(stack: VoiceStack, directory: Path, calls: int, rtp: str) -> None:
    """A few calls first, not counted: the API's, the SDK's and the database pools' first
    requests (connections, TLS sessions, lazy imports) are start-up costs, not a call's."""
    directory.mkdir()
    load = CarrierLoad(rate=5, concurrent=calls, calls=calls, hold_seconds=1)
    carrier = Carrier(
        directory,
        f"127.0.0.1:{stack.sip_port}",
        load,
        port=free_udp_block(1),
        media_port=free_udp_block(4),
        number=NUMBER,
        rtp=rtp,
    )
    try:
        carrier.wait()
    finally:
        carrier.kill()
    time.sleep(1.0)


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _watch_peak(groups: PlatformGroups, carrier: Carrier) -> tuple[list[tuple[int, int]], dict[str, int]]:
    peak = -1
    workers: list[tuple[int, int]] = []
    others: dict[str, int] = {}
    while carrier.running():
        time.sleep(1.0)
        calls = groups.calls()
        if calls <= peak:
            continue
        peak = calls
        workers = [m for pid in groups.workers() if (m := memory_kb(pid)) is not None]
        others = {
            "api": sum(m[0] for pid in groups._role("api") if (m := memory_kb(pid)) is not None),
            "events worker": sum(m[0] for pid in groups._role("worker") if (m := memory_kb(pid)) is not None),
        }
    return workers, others


def _at(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def first_attempts(session: Session) -> dict[str, float]:
    """When each event's first delivery attempt began (wall clock), by event id."""
    first: dict[str, float] = {}
    rows = session.execute(
        select(Delivery.event_id, DeliveryAttempt.started_at).join(
            DeliveryAttempt, DeliveryAttempt.delivery_id == Delivery.id
        )
    )
    for event_id, started_at in rows:
        at = started_at.timestamp()
        first[event_id] = min(at, first.get(event_id, at))
    return first


def _stamps(stack: VoiceStack, app: AnsweringWebhookApp, setups: dict[str, Any]) -> list[CallStamps]:
    """Each SIPp call joined with the database's and the app's stamps."""
    with stack.database.read_session() as session:
        legs = {leg.sip_call_id: leg for leg in session.scalars(select(CallLeg))}
        calls = {call.id: call for call in session.scalars(select(Call))}
        outbox = {
            event.data.get("serverCallId"): event
            for event in session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == INCOMING_CALL))
        }
        first_attempt = first_attempts(session)
    connected_at: dict[str, float] = {}
    with stack.app.lock:
        for callback, at in zip(stack.app.callbacks, stack.app.callback_times, strict=True):
            if callback.type == CONNECTED:
                connected_at.setdefault(callback.data["callConnectionId"], at)
    found: list[CallStamps] = []
    for sip_call_id, setup in setups.items():
        stamp = CallStamps(sip_call_id, None, setup.invite_at, setup.ringing_at, setup.ok_at)
        leg = legs.get(sip_call_id)
        if leg is not None:
            stamp.worker, stamp.offered = leg.worker, _at(leg.created_at)
            call = calls.get(leg.call_id)
            if call is not None:
                stamp.connected = _at(call.connected_at)
                stamp.connected_delivered = connected_at.get(call.id)
                row = outbox.get(call.server_call_id)
                if row is not None:
                    stamp.dispatched = _at(row.dispatched_at)
                    stamp.delivery_started = first_attempt.get(row.id)
                answered = app.answered.get(call.server_call_id)
                if answered is not None:
                    stamp.delivered = answered.received_at
                    stamp.answer_sent = answered.request_sent_at
                    stamp.answer_returned = answered.returned_at
        found.append(stamp)
    return found


def _as_record(stamp: CallStamps) -> CallRecord:
    """A call as the shared report reads it: the app's IncomingCall and :answer stamps."""
    record = CallRecord(stamp.sip_call_id, stamp.worker or 0, stamp.delivered or stamp.invite)
    record.answered_at = stamp.answer_sent
    record.connected_at = stamp.connected
    return record


SPANS: list[tuple[str, str, str]] = [
    ("INVITE → controller (SIPp→Kamailio→worker→supervisor)", "invite", "offered"),
    ("controller → 180 at SIPp (DB commit, Ring back out)", "offered", "ringing"),
    ("controller → outbox dispatched (commit + dispatcher poll)", "offered", "dispatched"),
    ("dispatched → delivery POST begins (hand-off, events worker)", "dispatched", "delivery_started"),
    ("POST begins → IncomingCall at the app (HTTPS)", "delivery_started", "delivered"),
    ("INVITE → IncomingCall delivered", "invite", "delivered"),
    ("the app: IncomingCall → :answer sent (SDK client work)", "delivered", "answer_sent"),
    (":answer sent → API returned (auth, DB commit, enqueue)", "answer_sent", "answer_returned"),
    ("API returned → 200 OK at SIPp (queue→SIP process→worker)", "answer_returned", "ok"),
    (":answer sent → 200 OK", "answer_sent", "ok"),
    ("INVITE → 200 OK (carrier's view, app included)", "invite", "ok"),
    ("200 OK → CallConnected committed", "ok", "connected"),
    ("200 OK → CallConnected at the app", "ok", "connected_delivered"),
]


def breakdown_table(stamps: list[CallStamps]) -> Table:
    table = Table(title="Where the INVITE → 200 OK time goes, ms (per call, joined by Call-ID)")
    for column in ("span", "calls", "p50", "p90", "p99", "max"):
        table.add_column(column, justify="left" if column == "span" else "right")

    def row(name: str, values: list[float]) -> None:
        p = Percentiles.of_seconds(values)
        if p is None:
            table.add_row(name, "0", "-", "-", "-", "-")
        else:
            table.add_row(name, str(p.count), *(_fmt(v, 2) for v in (p.p50, p.p90, p.p99, p.max)))

    for name, start, end in SPANS:
        values = []
        for s in stamps:
            a, b = getattr(s, start), getattr(s, end)
            if a is not None and b is not None:
                values.append(b - a)
        row(name, values)
    excluded = [
        (s.ok - s.invite) - (s.answer_sent - s.delivered)
        for s in stamps
        if s.ok is not None and s.answer_sent is not None and s.delivered is not None
    ]
    row("INVITE → 200 OK without the app's own time (the goal: p99 ≤ 150)", excluded)
    return table


def print_platform(result: PlatformRun, console: Any) -> None:
    from bench.calls_report import print_report

    print_report(result.run, console)
    console.print(breakdown_table(result.stamps))
    summary = Table(title="Platform path", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    failures = ", ".join(f"{k}: {v}" for k, v in sorted(result.failures.items())) or "none"
    summary.add_row("failed calls by SIP status (SIPp)", failures)
    summary.add_row("app: :answer errors", str(len(result.answer_errors)))
    seen = sum(1 for s in result.stamps if s.delivered is not None)
    summary.add_row("IncomingCall delivered / calls offered", f"{seen} / {len(result.stamps)}")
    connected = sum(1 for s in result.stamps if s.connected_delivered is not None)
    summary.add_row("CallConnected delivered", str(connected))
    expected = sum(max(0.0, result.run.load.hold_seconds) * 50 for s in result.stamps if s.ok is not None)
    summary.add_row(
        "RTP packets at the workers received / sent (about expected each way)",
        f"{result.rtp.get('received', 0):,.0f} / {result.rtp.get('sent', 0):,.0f} ({expected:,.0f})",
    )
    console.print(summary)
    for error in result.answer_errors[:5]:
        console.print(f"answer error: {error}", markup=False)
    if result.stamps:
        waits = [s.dispatched - s.offered for s in result.stamps if s.dispatched and s.offered]
        if waits:
            console.print(f"(outbox wait mean {statistics.mean(waits) * 1000:.1f} ms)")
