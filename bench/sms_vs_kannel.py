"""Issue 15's side-by-side: Kannel and Trunkline on the same machine, the same load, the same SMSC.

    .venv/bin/python -m bench.sms_vs_kannel [--count 20000] [--pairs 3] [--connections 32]
        [--window 100] [--max-events-per-batch 1] [--systems kannel events webhook]

Each system gets N one-recipient requests with delivery reports from ``wrk`` on 32 connections
(wrk stops after N answers), and one node-smpp SMSC (tests/smsc/smsc.js) answers every submit
with its receipt at once, over one transceiver bind with a window of 100 on both sides:

  kannel   Kannel 1.4.5 (Debian ``kannel``, installed when missing): bearerbox + smsbox, config
           generated into a temporary directory, ``max-pending-submits`` 100, reports in memory
           (``dlr-storage = internal``); ``sendsms`` GETs over HTTP with ``dlr-mask`` 3 and a
           ``dlr-url`` callback per report to bench/report_receiver.py (the app).
  events   ``trunkline api`` (HTTPS, HMAC-signed POST /sms) and ``trunkline smpp`` on a fresh
           PostgreSQL database and a private Redis: reports written as events (outbox).
  webhook  the same, plus ``trunkline worker`` delivering SMSDeliveryReportReceived to the
           same receiver over HTTPS (an Event Grid subscription, ``--max-events-per-batch``).

The systems run in turn, ``--pairs`` rounds (interleaved, so a noisy neighbour hurts all alike).
Rates run from wrk's start to the last request answered (accepted), the last report in hand
(delivered with report: Kannel's bearerbox DLR count, Trunkline's final states with their events
committed) and the last report at the receiver. CPU is read from /proc every 0.5 s for every
process of each side (descendants included, PostgreSQL's backends of the run's database, pids
born meanwhile counted from zero) and wrk's own from wait4; divided by the accepted count.

Statistics: Trunkline's tables past autovacuum's threshold are analysed every 2 s while they
grow (bench/pgstats.py); those ANALYZEs' CPU is a figure of its own, ``analyze`` (counted in the
total), no longer part of PostgreSQL's.
"""

from __future__ import annotations

# ruff: noqa: E402 - the sys.path fix below must run before the imports
import sys
from pathlib import Path

# This folder holds numbers.py and sms.py, which would shadow the stdlib's numbers and the sms
# package: run from the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
from functools import partial
from tempfile import TemporaryDirectory

from bench import use_secrets_key
from bench.api import WRK_THREADS
from bench.kannel import ensure_kannel, running_kannel
from bench.load_runs import measure, receiver_answers, receiver_count, run_wrk, start_receiver, wait_until
from bench.side_by_side import RunFigures, kannel_wrk_script, mean_cpu, ratio_span, span
from tests.e2e.helpers import free_port, stop_process
from tests.support.smsc import SmscProcess

SENDER_DIGITS = "14255550100"
LABELS = {
    "kannel": "Kannel (`sendsms` GET, `dlr-url` callback per report)",
    "events": "Trunkline, reports written as events",
    "webhook": "Trunkline, reports delivered to a webhook by `trunkline worker`",
}


def run_kannel(smsc: SmscProcess, count: int, connections: int, window: int) -> RunFigures:
    with TemporaryDirectory(prefix="bench-kannel-") as tmp_name:
        tmp = Path(tmp_name)
        receiver_port = free_port()
        receiver = start_receiver(receiver_port, None, tmp / "receiver.log")
        try:
            with running_kannel(tmp, smsc.host, smsc.port, smsc.system_id, smsc.password, window) as kannel:
                wait_until("the receiver", partial(receiver_answers, receiver_port, None), 30, 0.1)
                before = kannel.status().dlr_received
                script = tmp / "sendsms.lua"
                script.write_text(kannel_wrk_script(count, WRK_THREADS, receiver_port, SENDER_DIGITS))

                def load() -> tuple[int, float]:
                    accepted, failed, cpu = run_wrk(kannel.sendsms_url(), script, connections)
                    if failed:
                        print(f"    kannel: {failed} requests failed")
                    return accepted, cpu

                return measure(
                    {
                        "bearerbox": lambda: [kannel.bearerbox.pid],
                        "smsbox": lambda: [kannel.smsbox.pid],
                        "receiver": lambda: [receiver.pid],
                        "smsc": lambda: [smsc.process.pid],
                    },
                    load,
                    lambda accepted: kannel.status().dlr_received - before >= accepted,
                    lambda accepted: receiver_count(receiver_port) >= accepted,
                    "kannel",
                )
        finally:
            stop_process(receiver)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000, help="requests per run (N)")
    parser.add_argument("--pairs", type=int, default=3, help="rounds of the systems, interleaved")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--window", type=int, default=100, help="the bind's window on both sides")
    parser.add_argument("--max-events-per-batch", type=int, default=1, help="the webhook subscription's")
    parser.add_argument("--worker-concurrency", type=int, default=8, help="`trunkline worker --concurrency`")
    parser.add_argument("--systems", nargs="+", choices=list(LABELS), default=list(LABELS))
    args = parser.parse_args()

    use_secrets_key()
    from gateway.core.logging import configure_logging

    configure_logging("WARNING")  # the subscription's creation is logged at info
    if "kannel" in args.systems:
        ensure_kannel()
    from bench.trunkline_run import run_trunkline  # late: the gateway's imports, not for Kannel alone

    results: dict[str, list[RunFigures]] = {system: [] for system in args.systems}
    with SmscProcess.start(record=False, receipts="immediate") as smsc:
        print(
            f"N = {args.count:,} one-recipient requests with reports per run, wrk on {args.connections}"
            f" connections, node-smpp SMSC on 127.0.0.1:{smsc.port} (receipt at once), window {args.window},"
            f" {args.pairs} round(s) of {', '.join(args.systems)}; {os.cpu_count()} cores"
        )
        for round_number in range(1, args.pairs + 1):
            for system in args.systems:
                if system == "kannel":
                    figures = run_kannel(smsc, args.count, args.connections, args.window)
                else:
                    figures = run_trunkline(
                        smsc,
                        args.count,
                        args.connections,
                        args.window,
                        webhook=system == "webhook",
                        max_events_per_batch=args.max_events_per_batch,
                        worker_concurrency=args.worker_concurrency,
                    )
                results[system].append(figures)
                print(f"  round {round_number} {system:8s} {one_line(figures)}")
    print()
    print(table(results))


def one_line(figures: RunFigures) -> str:
    rates = [f"accepted {figures.accepted:,} at {figures.accepted_per_s:,.0f}/s"]
    if figures.delivered_per_s:
        rates.append(f"delivered with report {figures.delivered_per_s:,.0f}/s")
    if figures.app_per_s:
        rates.append(f"at the app {figures.app_per_s:,.0f}/s")
    cpu = ", ".join(
        f"{name} {ms:.2f}" for name, ms in sorted(figures.cpu_ms.items(), key=lambda item: -item[1])
    )
    busy = f"cores busy: its processes {figures.own_cores:.2f}, the machine {figures.machine_cores:.2f}"
    return "; ".join(rates) + f"; CPU {figures.cpu_ms_total:.2f} ms/message ({cpu}); {busy}"


def table(results: dict[str, list[RunFigures]]) -> str:
    lines = [
        "| | accepted/s | delivered with report/s | report received by the app/s"
        " | CPU ms per message, all processes |",
        "|---|---:|---:|---:|---:|",
    ]
    for system, runs in results.items():
        if not runs:
            continue
        cpu = mean_cpu(runs)
        total = sum(cpu.values())
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items())
        lines.append(
            f"| {LABELS[system]} | {span([r.accepted_per_s for r in runs])}"
            f" | {span([r.delivered_per_s for r in runs if r.delivered_per_s])}"
            f" | {span([r.app_per_s for r in runs if r.app_per_s])} | {total:.2f} ({parts}) |"
        )
    kannel = results.get("kannel", [])
    lines.append("")
    for system in ("webhook", "events"):
        runs = results.get(system, [])
        if not (kannel and runs):
            continue
        mine = [r.app_per_s or r.delivered_per_s or 0.0 for r in runs]
        theirs = [r.app_per_s or 0.0 for r in kannel]
        what = (
            "reports received by the app"
            if system == "webhook"
            else "reports in hand (events) vs Kannel's callbacks"
        )
        lines.append(
            f"Trunkline ({system}) / Kannel: {what} {ratio_span(mine, theirs)};"
            f" CPU per message {ratio_span([r.cpu_ms_total for r in runs], [r.cpu_ms_total for r in kannel])}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
