"""The figures of one bench/calls.py run, computed from what the carrier, the app and /proc saw,
and printed as tables (rich).

Setup latency joins SIPp's per-call log (INVITE sent, 200 OK received) with the app's stamps
(IncomingCall received, Answer sent) by SIP Call-ID, all on this machine's wall clock, so the
INVITE → 200 OK time splits into: the way in (SIPp → Kamailio → worker → supervisor → app), the
app's own time, and the way out (app → supervisor → worker → 200 OK → Kamailio → SIPp).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from bench.calls_app import CallRecord
from bench.calls_carrier import CarrierLoad, CarrierResult
from bench.procstat import GroupUsage, Sample, machine_usage, usage
from gateway.core.settings import Settings

# The dispatcher's look for due retries in production (Settings' default): the test stack the
# runs are built on (tests/e2e/calls/stack.py) looks 20 times a second.
SCHEDULE_INTERVAL: float = Settings.model_fields["events_schedule_interval_seconds"].default


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def of_seconds(cls, values: list[float]) -> Percentiles | None:
        if not values:
            return None
        ms = sorted(v * 1000 for v in values)

        def at(q: float) -> float:
            return ms[min(len(ms) - 1, int(q * len(ms)))]

        return cls(len(ms), at(0.50), at(0.90), at(0.99), ms[-1])


@dataclass(frozen=True, slots=True)
class RunInput:
    """Everything one run of the pool mode collected."""

    mode: str
    workers: int
    poll_ms: int
    load: CarrierLoad
    carrier: CarrierResult
    calls: list[CallRecord]
    command_failures: int
    restarts: int
    samples: list[Sample]
    idle: tuple[Sample, Sample]
    worker_memory_kb: list[tuple[int, int]]  # (RSS, PSS) of each worker at the peak
    other_memory_kb: dict[str, int]  # group -> RSS summed over its processes, at the peak
    start_seconds: float
    load_average: tuple[str, str]  # before, after


def held_window(samples: list[Sample]) -> tuple[Sample, Sample] | None:
    """The stretch from the first to the last sample holding at least 90% of the most calls held."""
    peak = max((s.calls for s in samples), default=0)
    held = [s for s in samples if peak and s.calls >= 0.9 * peak]
    return (held[0], held[-1]) if len(held) >= 2 else None


def _rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _percent(cores: float) -> str:
    return f"{cores * 100:.1f}%"


def print_report(run: RunInput, console: Console | None = None) -> None:
    console = console or Console()
    carrier, load = run.carrier, run.load
    invites = sorted(s.invite_at for s in carrier.setups.values())
    failed_in_pool = [c for c in run.calls if c.failed]
    peak_pool = max((s.calls for s in run.samples), default=0)
    probed = [c for c in run.calls if c.rx_packets is not None]
    both_ways = [c for c in probed if (c.rx_packets or 0) > 0 and (c.tx_packets or 0) > 0]
    per_worker = Counter(c.worker for c in run.calls)

    rx = _median([c.rx_packets for c in probed])
    tx = _median([c.tx_packets for c in probed])
    spread = f"{min(per_worker.values(), default=0)} / {max(per_worker.values(), default=0)}"
    offered = f"{load.rate:g}/s / {load.concurrent} / {load.calls} / {load.hold_seconds:g} s"
    seen = f"{len(run.calls)} / {len(failed_in_pool)} / {run.command_failures}"
    exit_code = "killed at deadline" if carrier.exit_code is None else str(carrier.exit_code)
    summary = Table(title=f"Calls through Kamailio and the pool ({run.mode})", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    rows = [
        ("workers (slots)", f"{run.workers} ({run.workers * 4}), idle poll {run.poll_ms} ms"),
        ("offered: rate / concurrent / calls / hold", offered),
        ("calls per second, first `concurrent` INVITEs (ramp)", _fmt(_rate(invites[: load.concurrent]))),
        ("calls per second, all INVITEs", _fmt(_rate(invites))),
        ("concurrent calls held, peak (pool / SIPp)", f"{peak_pool} / {carrier.peak_calls}"),
        ("successful / failed calls (SIPp)", f"{carrier.successful} / {carrier.failed}"),
        ("SIPp exit code", exit_code),
        ("calls the pool saw / ended unanswered / commands failed", seen),
        ("SIP retransmissions (SIPp)", str(carrier.retransmissions)),
        ("worker restarts", str(run.restarts)),
        ("RTP both ways (calls probed: rx>0 and tx>0)", f"{len(both_ways)} of {len(probed)}"),
        ("RTP packets per probed call, median rx / tx", f"{rx} / {tx}"),
        ("calls per worker, min / max", spread),
        ("pool + Kamailio start", f"{run.start_seconds:.1f} s"),
        ("load average before / after", f"{run.load_average[0]} / {run.load_average[1]}"),
    ]
    for row in rows:
        summary.add_row(*row)
    console.print(summary)
    if carrier.errors.strip():
        console.print("SIPp errors (tail):", carrier.errors.strip()[-1500:], markup=False)
    for record in failed_in_pool[:10]:
        why = f"{record.end_status} {record.end_reason}"
        console.print(f"unanswered: {record.sip_call_id} on worker {record.worker}: {why}", markup=False)

    console.print(latency_table(run))
    console.print(timeline_table(run))
    console.print(cpu_table(run))
    console.print(memory_table(run))


def _median(values: list[int | None]) -> str:
    present = [v for v in values if v is not None]
    return str(int(statistics.median(present))) if present else "-"


def latency_table(run: RunInput) -> Table:
    way_in, app, way_out, total, sipp_only = [], [], [], [], []
    seen: set[str] = set()
    for record in run.calls:
        setup = run.carrier.setups.get(record.sip_call_id)
        if setup is None or setup.ok_at is None or record.answered_at is None:
            continue
        seen.add(record.sip_call_id)
        way_in.append(record.incoming_at - setup.invite_at)
        app.append(record.answered_at - record.incoming_at)
        way_out.append(setup.ok_at - record.answered_at)
        total.append(setup.ok_at - setup.invite_at)
    for call_id, setup in run.carrier.setups.items():
        if call_id not in seen and setup.ok_at is not None:
            sipp_only.append(setup.ok_at - setup.invite_at)  # e.g. the app missed the join
    table = Table(title="Setup latency, ms (SIPp's clock and the app's, joined by Call-ID)")
    for column in ("span", "calls", "p50", "p90", "p99", "max"):
        table.add_column(column, justify="left" if column == "span" else "right")
    spans = [
        ("INVITE sent → IncomingCall at the app", way_in),
        ("the app: IncomingCall → Ring + Answer sent", app),
        ("Answer sent → 200 OK at the carrier", way_out),
        ("INVITE → 200 OK (carrier's view)", total + sipp_only),
    ]
    for name, values in spans:
        p = Percentiles.of_seconds(values)
        if p is None:
            table.add_row(name, "0", "-", "-", "-", "-")
        else:
            table.add_row(name, str(p.count), *(_fmt(v, 2) for v in (p.p50, p.p90, p.p99, p.max)))
    table.caption = f"SIPp's own mean INVITE→200: {_fmt(run.carrier.mean_setup_ms)} ms (1 ms resolution)"
    return table


def cpu_table(run: RunInput) -> Table:
    windows: list[tuple[str, tuple[Sample, Sample] | None]] = [
        ("idle (before calls)", run.idle),
        ("whole run", (run.samples[0], run.samples[-1]) if len(run.samples) >= 2 else None),
        ("held (≥90% of peak calls)", held_window(run.samples)),
    ]
    computed = [(name, usage(*w) if w else None, machine_usage(*w) if w else None) for name, w in windows]
    table = Table(title="CPU, share of one core (2 cores = 200%)")
    table.add_column("process")
    for name, _, _ in computed:
        table.add_column(name, justify="right")
    groups = list(computed[1][1] or computed[0][1] or {})
    for group in groups:
        table.add_row(group, *(_group_cell(u.get(group)) if u else "-" for _, u, _ in computed))
        if group == "workers":
            table.add_row(
                "  per worker, median / max",
                *(_per_process(u.get(group)) if u else "-" for _, u, _ in computed),
            )
    ours = [_percent(sum(g.cores for g in u.values())) if u else "-" for _, u, _ in computed]
    table.add_row("all of the above", *ours)
    machine = [_percent(m) if m is not None else "-" for _, _, m in computed]
    table.add_row("whole machine (other helpers' work included)", *machine)
    held, idle, window = computed[2][1], computed[0][1], held_window(run.samples)
    if held is not None and idle is not None and window is not None and "workers" in held:
        calls = statistics.mean(s.calls for s in run.samples if window[0].at <= s.at <= window[1].at)
        extra = held["workers"].cores - idle["workers"].cores
        table.caption = (
            f"held phase: {calls:.0f} calls on average; workers' CPU above idle per held call "
            f"{_percent(extra / calls) if calls else '-'} of a core"
        )
        if (computed[2][2] or 0) > 0.95 * (os.cpu_count() or 1):
            table.caption += " (the machine was saturated: processes got less CPU than they wanted)"
    return table


def timeline_table(run: RunInput) -> Table:
    """Calls held, new calls, their setup time and failures, and CPU, in slices of the run."""
    table = Table(title="Over time (INVITEs counted in the slice they were sent)")
    for column in ("from s", "calls held", "INVITEs", "setup p50 ms", "setup p99 ms", "no 200 OK"):
        table.add_column(column, justify="right")
    table.add_column("workers CPU", justify="right")
    table.add_column("machine CPU", justify="right")
    samples = run.samples
    if len(samples) < 2:
        return table
    start, end = samples[0].wall, samples[-1].wall
    step = max(5.0, round((end - start) / 15))
    setups = list(run.carrier.setups.values())
    edges = [start + i * step for i in range(int((end - start) // step) + 1)]
    for low in edges:
        high = low + step
        inside = [s for s in samples if low <= s.wall <= high]
        if len(inside) < 2:
            continue
        group = usage(inside[0], inside[-1]).get("workers")
        sent = [s for s in setups if low <= s.invite_at < high]
        answered = [s.ok_at - s.invite_at for s in sent if s.ok_at is not None]
        p = Percentiles.of_seconds(answered)
        table.add_row(
            f"{low - start:.0f}",
            str(max(s.calls for s in inside)),
            str(len(sent)),
            _fmt(p.p50 if p else None),
            _fmt(p.p99 if p else None),
            str(len(sent) - len(answered)),
            _percent(group.cores) if group else "-",
            _percent(machine_usage(inside[0], inside[-1])),
        )
    return table


def _group_cell(group: GroupUsage | None) -> str:
    return "-" if group is None else f"{_percent(group.cores)} ({group.processes})"


def _per_process(group: GroupUsage | None) -> str:
    if group is None or not group.per_process:
        return "-"
    return f"{_percent(statistics.median(group.per_process))} / {_percent(group.per_process[0])}"


def memory_table(run: RunInput) -> Table:
    table = Table(title="Memory at the peak of calls held, MB")
    table.add_column("process")
    table.add_column("RSS", justify="right")
    table.add_column("PSS (shared pages split)", justify="right")
    rss = [r / 1024 for r, _ in run.worker_memory_kb]
    pss = [p / 1024 for _, p in run.worker_memory_kb]
    if rss:
        table.add_row("worker, median", _fmt(statistics.median(rss)), _fmt(statistics.median(pss)))
        table.add_row("worker, max", _fmt(max(rss)), _fmt(max(pss)))
        table.add_row(f"all {len(rss)} workers", _fmt(sum(rss), 0), _fmt(sum(pss), 0))
    for group, kb in run.other_memory_kb.items():
        table.add_row(group, _fmt(kb / 1024), "")
    return table
