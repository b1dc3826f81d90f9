"""What ``bench.calls --mode media`` prints: each call's failure reason, the latency table with
its split, and CPU per call by process kind (the run itself is bench/calls_media.py)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from bench.calls_media import DIGITS, TONES, MediaRun, MediaStamps
from bench.calls_report import Percentiles, _fmt
from bench.procstat import usage

FAILED_CALL_IDS_SHOWN = 5


def failure_of(stamp: MediaStamps) -> str:
    """Why a call failed, or "" (the first missing step, in the call's order)."""
    if not stamp.ok:
        return "no 200 OK (SIP, by status below)"
    call = stamp.app
    if call is None or call.connected_at is None:
        return "missing event: CallConnected"
    if call.recognize_error:
        return "recognize refused: " + call.recognize_error[:60]
    if call.failure:
        return call.failure
    if stamp.prompt_at is None:
        if stamp.rtp_packets is None:
            return "no prompt audio at the carrier (no RTP socket for its Call-ID)"
        if stamp.rtp_packets == 0:
            return "no prompt audio at the carrier (no RTP at all)"
        return "no prompt audio at the carrier (silence only)"
    if stamp.digits_sent < len(DIGITS):
        return "digits not all sent (call ended first)"
    if stamp.completed is None:
        return "missing event: RecognizeCompleted"
    if call.tones != [TONES[d] for d in DIGITS]:
        return f"wrong tones {call.tones}"
    return ""


BREAKDOWN = [
    (
        "  last digit → RecognizeCompleted written (RTP→worker→supervisor→controller)",
        "last_digit_end",
        "written",
    ),
    ("  written → dispatched (commit + the dispatcher's poll)", "written", "dispatched"),
    ("  dispatched → delivery POST begins (hand-off, events worker)", "dispatched", "post_started"),
    ("  POST begins → at the app (HTTPS)", "post_started", "completed"),
]


def _row(table: Table, name: str, values: list[float]) -> None:
    p = Percentiles.of_seconds(values)
    if p is None:
        table.add_row(name, "0", "-", "-", "-", "-")
    else:
        table.add_row(name, str(p.count), *(_fmt(v, 1) for v in (p.p50, p.p90, p.p99, p.max)))


def print_media(run: MediaRun, console: Any) -> None:
    failures: dict[str, int] = {}
    examples: dict[str, list[str]] = {}  # SIP Call-IDs by reason, to find the calls in --keep's logs
    for stamp in run.stamps:
        reason = failure_of(stamp)
        if reason:
            failures[reason] = failures.get(reason, 0) + 1
            examples.setdefault(reason, []).append(stamp.sip_call_id)
    summary = Table(title=f"Media run: {run.workers} workers, prompt {run.prompt}", show_header=False)
    summary.add_column("what")
    summary.add_column("value", justify="right")
    summary.add_row("calls placed (SIPp)", str(len(run.stamps)))
    summary.add_row(
        "calls that recognized the 4 digits", str(sum(1 for s in run.stamps if not failure_of(s)))
    )
    summary.add_row("failed calls", str(sum(failures.values())))
    for reason, count in sorted(failures.items()):
        summary.add_row(f"  {reason}", str(count))
        summary.add_row("    SIP Call-ID", ", ".join(examples[reason][:FAILED_CALL_IDS_SHOWN]))
    sip = ", ".join(f"{k}: {v}" for k, v in sorted(run.sip_failures.items())) or "none"
    summary.add_row("SIPp failed calls by SIP status", f"{run.carrier.failed} ({sip})")
    summary.add_row("app: :answer errors", str(len(run.answer_errors)))
    prepared = ", ".join(f"{k}: {v:.0f}" for k, v in sorted(run.prepares.items()) if v) or "none"
    summary.add_row("prompt preparations in the run (SIP process metric)", prepared)
    summary.add_row(
        "concurrent calls held (SIPp peak / workers' peak)", f"{run.carrier.peak_calls} / {run.peak_calls}"
    )
    console.print(summary)

    table = Table(title="Latency, ms (per call)")
    for column in ("span", "calls", "p50", "p90", "p99", "max"):
        table.add_column(column, justify="left" if column == "span" else "right")
    _row(
        table,
        "last digit (its first end packet sent) → RecognizeCompleted at the app (goal p99 ≤ 200)",
        [s.completed - s.last_digit_end for s in run.stamps if s.completed and s.last_digit_end],
    )
    _row(
        table,
        "last digit's last RTP packet sent → RecognizeCompleted at the app",
        [s.completed - s.last_packet for s in run.stamps if s.completed and s.last_packet],
    )
    for name, start, end in BREAKDOWN:
        values = []
        for stamp in run.stamps:
            a, b = getattr(stamp, start), getattr(stamp, end)
            if a is not None and b is not None:
                values.append(b - a)
        _row(table, name, values)
    lag = run.dtmf_lag
    table.add_row(
        "  of which the digit at its worker → the controller's decision (histogram bound)",
        "",
        *(f"≤ {bound * 1000:g}" if bound is not None else "> 5000" for bound in (lag[0], lag[1], lag[2])),
        "",
    )
    _row(
        table,
        ":recognize sent (with its prompt) → first prompt audio packet at the carrier",
        [s.prompt_at - s.recognize_sent for s in run.stamps if s.prompt_at and s.recognize_sent],
    )
    connected = [
        s.app.recognize_sent - s.app.connected_at
        for s in run.stamps
        if s.app is not None and s.app.recognize_sent and s.app.connected_at
    ]
    _row(table, "(the app: CallConnected received → :recognize sent)", connected)
    console.print(table)
    console.print(cpu_per_call(run))
    for error in run.answer_errors[:3]:
        console.print(f"answer error: {error}", markup=False)
    if run.carrier.errors and run.carrier.failed:
        console.print(run.carrier.errors[-1500:], markup=False)


def cpu_per_call(run: MediaRun) -> Table:
    """CPU seconds each process kind spent over the run, per call placed."""
    table = Table(title="CPU per call, by process kind (whole run / calls placed)")
    for column in ("process", "processes", "CPU s in the run", "CPU ms per call", "above idle, ms per call"):
        table.add_column(column, justify="left" if column == "process" else "right")
    if len(run.samples) < 2 or not run.stamps:
        return table
    first, last = run.samples[0], run.samples[-1]
    wall = last.at - first.at
    calls = len(run.stamps)
    idle = usage(*run.idle) if run.idle is not None else {}
    total = above = 0.0
    for name, now in last.cpu.items():
        before = first.cpu.get(name, {})
        seconds = sum(s - before.get(pid, 0.0) for pid, s in now.items())
        extra = seconds - (idle[name].cores * wall if name in idle else 0.0)
        total, above = total + seconds, above + extra
        table.add_row(
            name,
            str(len(now)),
            _fmt(seconds, 2),
            _fmt(1000 * seconds / calls, 1),
            _fmt(1000 * extra / calls, 1),
        )
    table.add_row("all", "", _fmt(total, 2), _fmt(1000 * total / calls, 1), _fmt(1000 * above / calls, 1))
    table.caption = (
        f"over {wall:.0f} s; above idle: less each kind's idle rate (measured before the calls) "
        "times the run's length; the app and the carrier's RTP peer are this process (the bench), "
        "SIPp is the carrier's signalling"
    )
    return table
