"""SMS throughput against the node-smpp test SMSC (tests/smsc/smsc.js), one run on this machine.

  (a) raw    smpplib alone: one writer thread sending submit_sm with smpplib's Client.send_pdu,
             one reader thread on Client.read_pdu, a semaphore as the window: the ceiling;
      bind   the same submits through sms.bind.SmppBind (its window, rate limiter off,
             futures per submit), and the ratio bind/raw.
  nagle      one transceiver bind with delivery receipts on, window 1 (submit, wait, next):
             per-message round trip with TCP_NODELAY on and off.

(b) queue  the SMPP process (sms.worker, what `trunkline smpp` runs) draining
             queued rows fed as production feeds them (rows committed, then their Celery send
             jobs published on Redis) over one bind: messages per second to stored
             submit_sm_resps.
(c) e2e      real `trunkline api` and `trunkline smpp` processes: concurrent signed POST /sms
             with one recipient each and enableDeliveryReport, receipts from the SMSC at once,
             until every message is delivered with its SMSDeliveryReportReceived event written.
Ratios (b)/(a) and (c)/(a) use (a) at the window of (b) and (c).

    .venv/bin/python -m bench.sms [--count 20000] [--window 10 50] [--nagle-count 200]
        [--parts a nagle b c] [--queue-count 20000] [--e2e-count 5000] [--e2e-clients 32]
        [--backend postgresql|sqlite] [--pipeline-window 50]
"""

from __future__ import annotations

# ruff: noqa: E402 - the sys.path fix below must run before the imports
import sys
from pathlib import Path

# This folder holds numbers.py and sms.py, which would shadow the stdlib's numbers (psycopg needs
# it) and the sms package: run from the repository root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from functools import partial

import smpplib.client
import smpplib.consts
import smpplib.smpp

from bench.sms_pipeline import cpu_seconds
from sms.bind import SmppBind
from sms.bind_types import BindConfig, SubmitRequest, SubmitResult
from tests.support.smsc import SmscProcess

TEXT = b"Your verification code is 123456"


def measured(smsc: SmscProcess, run: Callable[[], float]) -> tuple[float, float]:
    """Run a benchmark; its rate and the share of one core the SMSC process used meanwhile."""
    cpu_before, wall_before = cpu_seconds(smsc.process.pid), time.perf_counter()
    rate = run()
    busy = (cpu_seconds(smsc.process.pid) - cpu_before) / (time.perf_counter() - wall_before)
    return rate, busy


def raw_smpplib(smsc: SmscProcess, count: int, window: int) -> float:
    """Submits per second with smpplib alone and a hand-rolled window."""
    client = smpplib.client.Client(smsc.host, smsc.port, timeout=30, allow_unknown_opt_params=True)
    client.connect()
    client.bind_transceiver(system_id=smsc.system_id, password=smsc.password)
    slots = threading.Semaphore(window)
    done = threading.Event()
    answered = 0

    def reader() -> None:
        nonlocal answered
        while answered < count:
            pdu = client.read_pdu()
            if pdu.command == "submit_sm_resp":
                answered += 1
                slots.release()
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    started = time.perf_counter()
    thread.start()
    for _ in range(count):
        slots.acquire()
        client.send_message(
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="15550001111",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="447700900123",
            short_message=TEXT,
        )
    done.wait()
    elapsed = time.perf_counter() - started
    client.unbind()
    client.disconnect()
    return count / elapsed


def through_bind(smsc: SmscProcess, count: int, window: int) -> float:
    bind = SmppBind(
        BindConfig(
            name="bench",
            host=smsc.host,
            port=smsc.port,
            system_id=smsc.system_id,
            password=smsc.password,
            window_size=window,
            queue_timeout=600,
            response_timeout=60,
        )
    )
    bind.start()
    assert bind.wait_bound(10)
    request = SubmitRequest("15550001111", "447700900123", TEXT)
    started = time.perf_counter()
    futures: list[Future[SubmitResult]] = [bind.submit(request) for _ in range(count)]
    wait(futures)
    elapsed = time.perf_counter() - started
    bind.stop()
    failures = sum(1 for f in futures if not f.result().ok)
    if failures:
        print(f"  ({failures} submits failed)")
    return count / elapsed


def nagle(smsc: SmscProcess, count: int, nodelay: bool) -> tuple[float, float]:
    """Mean and median milliseconds per message, one at a time, receipts on."""
    smsc.configure(receipts="immediate")
    received = threading.Semaphore(0)
    bind = SmppBind(
        BindConfig(
            name=f"nagle-{nodelay}",
            host=smsc.host,
            port=smsc.port,
            system_id=smsc.system_id,
            password=smsc.password,
            window_size=1,
            tcp_nodelay=nodelay,
        )
    )
    bind.on_deliver(lambda _: received.release())
    bind.start()
    assert bind.wait_bound(10)
    request = SubmitRequest("15550001111", "447700900123", TEXT, registered_delivery=1)
    timings: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        assert bind.submit(request).result(10).ok
        received.acquire(timeout=10)
        timings.append((time.perf_counter() - started) * 1000)
    bind.stop()
    smsc.configure(receipts="none")
    return statistics.fmean(timings), statistics.median(timings)


def receipts_throughput(smsc: SmscProcess, count: int, window: int, nodelay: bool) -> float:
    """Submits per second with a receipt for each (both directions busy on one socket)."""
    smsc.configure(receipts="immediate")
    bind = SmppBind(
        BindConfig(
            name=f"nagle-window-{nodelay}",
            host=smsc.host,
            port=smsc.port,
            system_id=smsc.system_id,
            password=smsc.password,
            window_size=window,
            tcp_nodelay=nodelay,
            queue_timeout=600,
        )
    )
    bind.start()
    assert bind.wait_bound(10)
    request = SubmitRequest("15550001111", "447700900123", TEXT, registered_delivery=1)
    started = time.perf_counter()
    wait([bind.submit(request) for _ in range(count)])
    elapsed = time.perf_counter() - started
    bind.stop()
    smsc.configure(receipts="none")
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--window", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--nagle-count", type=int, default=200)
    parser.add_argument("--parts", nargs="+", default=["a", "nagle", "b", "c"])
    parser.add_argument("--queue-count", type=int, default=20_000)
    parser.add_argument("--e2e-count", type=int, default=5_000)
    parser.add_argument("--e2e-clients", type=int, default=32)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--pipeline-window", type=int, default=50)
    parser.add_argument("--api-workers", type=int, default=1, help="trunkline api --workers for (c)")
    parser.add_argument(
        "--e2e-wrk-seconds",
        type=float,
        default=0.0,
        help="(c) with wrk on --e2e-clients connections for this long (replaying --e2e-count signed requests)"
        " instead of Python client threads",
    )
    args = parser.parse_args()

    with SmscProcess.start(record=False) as smsc:
        print(f"node-smpp SMSC on 127.0.0.1:{smsc.port}; {args.count} submits per run, 1 transceiver bind")
        ceiling = 0.0
        if "b" in args.parts or "c" in args.parts:
            ceiling = raw_smpplib(smsc, args.count, args.pipeline_window)
            print(f"  (a) raw smpplib at window {args.pipeline_window}: {ceiling:7.0f}/s")
        if "b" in args.parts:
            from bench.sms_pipeline import drain_queue

            rate, cpu_ms = drain_queue(smsc, args.queue_count, args.pipeline_window, args.backend)
            print(
                f"  (b) SMPP process draining {args.queue_count} queued messages ({args.backend}):"
                f" {rate:7.0f}/s, ratio (b)/(a) {rate / ceiling:5.2f}; its CPU {cpu_ms:.3f} ms/message"
            )
        if "c" in args.parts:
            from bench.sms_pipeline import end_to_end

            figures = end_to_end(
                smsc,
                args.e2e_count,
                args.pipeline_window,
                args.backend,
                args.e2e_clients,
                args.api_workers,
                args.e2e_wrk_seconds,
            )
            rate = figures["delivered_with_events_per_second"]
            clients = (
                f"wrk on {args.e2e_clients} connections for {args.e2e_wrk_seconds:g} s"
                if args.e2e_wrk_seconds
                else f"{args.e2e_clients} Python client threads"
            )
            print(
                f"  (c) end to end, {figures['accepted']} POST /sms by {clients}, {args.api_workers} API"
                f" worker(s) ({args.backend}):"
                f" accepted {figures['accepted_per_second']:7.0f}/s; delivered with report events"
                f" {rate:7.0f}/s ({figures['events']:.0f} events, {figures['failures']:.0f} failed requests),"
                f" ratio (c)/(a) {rate / ceiling:5.2f}"
            )
            cpu = figures["cpu_ms_per_message"]
            total = sum(cpu.values())
            print(
                "      CPU per message (ms): "
                + ", ".join(f"{part} {value:.2f}" for part, value in cpu.items())
                + f"; total {total:.2f}: at most {os.cpu_count() or 1} cores / total ="
                f" {(os.cpu_count() or 1) * 1000 / total:7.0f} msg/s on this machine"
            )
            if figures.get("first_failure"):
                print(f"      first failed request: {figures['first_failure']}")
        for window in args.window if "a" in args.parts else []:
            raw, raw_busy = measured(smsc, partial(raw_smpplib, smsc, args.count, window))
            bound, bound_busy = measured(smsc, partial(through_bind, smsc, args.count, window))
            print(
                f"  window {window:4d}: (a) raw smpplib {raw:7.0f}/s (SMSC node at {raw_busy:4.0%} of a core)"
                f"   sms.bind {bound:7.0f}/s (node {bound_busy:4.0%})   ratio bind/raw {bound / raw:5.2f}"
            )
        if args.nagle_count and "nagle" in args.parts:
            print(f"Nagle: {args.nagle_count} messages one at a time (submit → resp → receipt), transceiver")
            for nodelay in (True, False):
                mean, median = nagle(smsc, args.nagle_count, nodelay)
                label = "TCP_NODELAY on " if nodelay else "TCP_NODELAY off"
                windowed = receipts_throughput(smsc, args.nagle_count * (10 if nodelay else 1), 10, nodelay)
                print(
                    f"  {label}: {mean:7.2f} ms/message mean, {median:7.2f} ms median;"
                    f" window 10 with receipts {windowed:7.0f} submits/s"
                )


if __name__ == "__main__":
    main()
