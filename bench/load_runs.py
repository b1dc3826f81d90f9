"""Measuring one run of bench/sms_vs_kannel.py: wrk until N answers, the report receiver, CPU
per process group from /proc while the run lasts."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.api import WRK_THREADS
from bench.procstat import Sampler, machine_usage
from bench.side_by_side import THREAD_DONE, RunFigures, group_cpu_seconds, parse_wrk

RUN_TIMEOUT = 900.0
# How often the bench asks whether all is delivered: each look costs the measured side a little
# (a COUNT on PostgreSQL, a status page from bearerbox), counted in its CPU; 0.2 s is under 1%
# of a 20,000-message run.
POLL = 0.2


def run_wrk(url: str, script: Path, connections: int) -> tuple[int, int, float]:
    """wrk on ``connections`` connections until its script stops it: (requests answered 2xx,
    non-2xx and socket errors, wrk's CPU seconds from wait4)."""
    process = subprocess.Popen(
        [
            "wrk",
            "-t",
            str(WRK_THREADS),
            "-c",
            str(connections),
            "-d",
            f"{int(RUN_TIMEOUT)}s",
            "-s",
            str(script),
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    stopped = 0
    for raw in process.stdout:
        line = raw.decode(errors="replace")
        lines.append(line)
        if line.strip() == THREAD_DONE:
            stopped += 1
            if stopped == WRK_THREADS:
                process.send_signal(signal.SIGINT)  # wrk would sleep out its duration
    output = "".join(lines)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {output}")
    summary = parse_wrk(output)
    return (
        summary.requests - summary.non_2xx,
        summary.non_2xx + summary.errors,
        usage.ru_utime + usage.ru_stime,
    )


def receiver_count(port: int, context: ssl.SSLContext | None = None) -> int:
    scheme = "https" if context is not None else "http"
    with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/count", timeout=10, context=context) as answer:
        return int(json.loads(answer.read())["reports"])


def start_receiver(port: int, tls: tuple[Path, Path] | None, log: Path) -> subprocess.Popen[bytes]:
    extra = [str(tls[0]), str(tls[1])] if tls else []
    return subprocess.Popen(
        [sys.executable, "-m", "bench.report_receiver", str(port), *extra],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def wait_until(what: str, done: Callable[[], bool], timeout: float, interval: float = 0.05) -> float:
    """Poll ``done`` until true; the perf_counter time it was first seen true."""
    deadline = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)
    return time.perf_counter()


def measure(
    groups: dict[str, Callable[[], list[int]]],
    load: Callable[[], tuple[int, float]],
    delivered: Callable[[int], bool] | None,
    received: Callable[[int], bool] | None,
    system: str,
) -> RunFigures:
    """Sample ``groups``, run ``load`` (-> accepted, wrk CPU s), wait for the reports."""
    sampler = Sampler(groups, lambda: 0, interval=0.5)
    first = sampler.sample()
    sampler.start()
    started = time.perf_counter()
    try:
        accepted, wrk_cpu = load()
        accepted_at = time.perf_counter()
        delivered_at = (
            wait_until("delivered with report", partial(delivered, accepted), RUN_TIMEOUT, POLL)
            if delivered
            else None
        )
        received_at = (
            wait_until("reports at the app", partial(received, accepted), RUN_TIMEOUT, POLL)
            if received
            else None
        )
    finally:
        sampler.stop()
    last = sampler.sample()
    cpu = group_cpu_seconds(first, last)
    cpu["wrk"] = wrk_cpu
    return RunFigures(
        system=system,
        accepted=accepted,
        accepted_per_s=accepted / (accepted_at - started),
        delivered_per_s=accepted / (delivered_at - started) if delivered_at else None,
        app_per_s=accepted / (received_at - started) if received_at else None,
        cpu_ms={name: 1000 * seconds / max(1, accepted) for name, seconds in cpu.items()},
        own_cores=sum(cpu.values()) / max(last.at - first.at, 1e-9),
        machine_cores=machine_usage(first, last),
    )


def receiver_answers(port: int, context: ssl.SSLContext | None) -> bool:
    try:
        receiver_count(port, context)
        return True
    except OSError:
        return False


def postgres_pids(database_name: str) -> list[int]:
    """The PostgreSQL backends serving one database (their process title names it)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(b"postgres: ") and f" {database_name} ".encode() in title:
            found.append(int(proc.name))
    return found
