"""Voice benchmark: inbound calls through Kamailio and the SIP worker pool, SIPp as the carrier.

SIPp (Debian sip-tester) calls in at ``--rate`` per second, at most ``--concurrent`` at once,
``--calls`` in all, each held ``--hold-seconds`` with G.711 audio played from a pcap while the
worker sends its audio back; everything on 127.0.0.1, every process started here is stopped by
its pid at the end. Figures: calls per second and concurrent calls held with zero failed calls,
INVITE → 200 OK p50/p99 split into the way in, the app and the way out, CPU per process group
from /proc (idle, whole run, held phase), RSS/PSS per worker at the peak.

Modes:
  pool      (A) ``start_sip`` in this process (it is the supervisor), an app on the event
            queue that answers every IncomingCall at once: the pool's own cost.
  platform  (B) the real stack (bench/calls_platform.py): ``trunkline api`` (TLS), ``trunkline
            worker``, ``trunkline sip --edge kamailio --workers N``, PostgreSQL, Redis; an https
            app in this process answers every IncomingCall from its Event Grid webhook with the
            official CallAutomationClient. Adds INVITE → IncomingCall delivered, :answer → 200 OK
            and a breakdown of the path, the app's own time apart.

    .venv/bin/python -m bench.calls [--mode pool|platform] [--workers 20] [--rate 10]
        [--concurrent 60] [--hold-seconds 10] [--calls N] [--poll-ms 20]

  media     the platform's stack, an IVR (bench/calls_media.py): each call answered, then
            ``:recognize`` of 4 DTMF digits behind a prompt (``--prompt file``: a WAV FileSource
            from the app, cached after the first call; ``text``: a TextSource); the carrier's
            RTP is a Python peer that hears the prompt and presses the digits (RFC 2833). Adds
            last digit → RecognizeCompleted, :recognize → first prompt packet, failures by
            reason, CPU per call per process kind.

The goal size (issue 12), on a quiet machine, about 60 s:

    .venv/bin/python -m bench.calls --mode platform --workers 102 --rate 20 --concurrent 400 \
        --hold-seconds 30 --calls 800

The media goal (issue 13: 200 calls held at once, each playing a prompt and collecting 4
digits), on a quiet machine, about 70 s:

    .venv/bin/python -m bench.calls --mode media --workers 52 --rate 10 --concurrent 200 \
        --hold-seconds 20 --calls 400
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from bench.calls_app import AnsweringApp
from bench.calls_carrier import HOST, RTP_MODES, Carrier, CarrierLoad
from bench.calls_media import run_media
from bench.calls_media_report import print_media
from bench.calls_platform import print_platform, run_platform
from bench.calls_report import RunInput, print_report
from bench.procstat import Sampler, descendants, memory_kb
from sip.worker.config import (
    DEFAULT_MEDIA_POLL_SECONDS,
    DEFAULT_POLL_MS,
    MAX_CALLS_PER_WORKER,
    kamailio_available,
)
from sip.worker.main import EdgeKind, SipOptions, SipRuntime, start_sip
from tests.sip.support import free_udp_block

REPO = Path(__file__).resolve().parents[1]
CALLED_NUMBER = "+15550001000"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_pool(args: argparse.Namespace, load: CarrierLoad) -> RunInput:
    """Mode (A): the pool alone, answered by an app on its event queue."""
    directory = Path(tempfile.mkdtemp(prefix="trunkline-bench-calls-"))
    try:
        return _run_pool(args, load, directory)
    finally:
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


def _run_pool(args: argparse.Namespace, load: CarrierLoad, directory: Path) -> RunInput:
    listen = free_udp_block(2)
    options = SipOptions(
        workers=args.workers,
        edge=EdgeKind.KAMAILIO,
        listen=f"{HOST}:{listen}",
        worker_sip_port=free_udp_block(args.workers),
        rtp_port=free_udp_block(args.workers * 40),
        rpc_port=listen + 1,
        kamailio_dir=directory / "kamailio",
        kamailio_children=args.kamailio_children,
        poll_ms=args.poll_ms,
    )
    (directory / "kamailio").mkdir()
    load_before = load_average()
    started = time.monotonic()
    with _output_to(directory / "workers.log"):  # pjlib's start-up lines, the workers' output
        runtime = start_sip(options)
    start_seconds = time.monotonic() - started
    carrier: Carrier | None = None
    app = AnsweringApp(runtime, probe_after=min(5.0, load.hold_seconds / 2))
    try:
        app.start()
        sampler = Sampler(
            {
                "workers": lambda: [s.pid for s in runtime.status() if s.pid is not None],
                "kamailio": lambda: _kamailio_pids(runtime),
                "sipp (carrier)": lambda: [carrier.pid] if carrier is not None and carrier.running() else [],
                "supervisor + app (this process)": lambda: [os.getpid()],
            },
            calls=lambda: sum(s.calls for s in runtime.status()),
        )
        idle_first = sampler.sample()
        time.sleep(args.idle_seconds)
        idle_last = sampler.sample()
        sampler.samples.clear()
        carrier = Carrier(
            directory,
            runtime.address,
            load,
            port=free_udp_block(1),
            media_port=free_udp_block(4),
            number=CALLED_NUMBER,
            rtp=args.carrier_rtp,
        )
        sampler.sample()
        sampler.start()
        worker_memory, other_memory = _watch_peak(runtime, carrier, sampler)
        exit_code = carrier.wait()
        sampler.stop()
        sampler.sample()
        result = carrier.result(exit_code)
        app.wait_ended(len(app.calls), timeout=10)
        status = runtime.status()
        return RunInput(
            mode="pool only",
            workers=args.workers,
            poll_ms=args.poll_ms,
            load=load,
            carrier=result,
            calls=list(app.calls.values()),
            command_failures=len(app.command_failures),
            restarts=sum(s.restarts for s in status),
            samples=list(sampler.samples),
            idle=(idle_first, idle_last),
            worker_memory_kb=worker_memory,
            other_memory_kb=other_memory,
            start_seconds=start_seconds,
            load_average=(load_before, load_average()),
        )
    finally:
        if carrier is not None:
            carrier.kill()
        app.stop()
        runtime.stop()


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Point stdout and stderr (fds 1, 2) at ``path`` meanwhile; processes started meanwhile keep it."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("ab") as target:
        os.dup2(target.fileno(), 1)
        os.dup2(target.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def _kamailio_pids(runtime: SipRuntime) -> list[int]:
    process = runtime.edge.process if runtime.edge is not None else None
    return descendants(process.pid) if process is not None and process.poll() is None else []


def _watch_peak(
    runtime: SipRuntime, carrier: Carrier, sampler: Sampler
) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """While SIPp runs: the most calls held, and the memory of every process at that moment."""
    peak = -1
    workers: list[tuple[int, int]] = []
    others: dict[str, int] = {}
    while carrier.running():
        time.sleep(1.0)
        status = runtime.status()
        calls = sum(s.calls for s in status)
        if calls <= peak:
            continue
        peak = calls
        workers = [m for s in status if s.pid is not None and (m := memory_kb(s.pid)) is not None]
        others = {}
        for name, pids in sampler.groups.items():
            if name != "workers":
                others[name] = sum(m[0] for pid in pids() if (m := memory_kb(pid)) is not None)
    return workers, others


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("pool", "platform", "media"), default="pool")
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0, help="new calls per second")
    parser.add_argument("--concurrent", type=int, default=60, help="most calls held at once")
    parser.add_argument("--hold-seconds", type=float, default=10.0)
    parser.add_argument("--calls", type=int, help="calls in all (default: 2 x --concurrent)")
    parser.add_argument("--poll-ms", type=int, default=DEFAULT_POLL_MS, help="workers' idle event poll")
    parser.add_argument(
        "--media-poll-seconds",
        type=float,
        default=DEFAULT_MEDIA_POLL_SECONDS,
        help="platform: RTP counter reads",
    )
    parser.add_argument(
        "--dispatch-interval", type=float, default=0.1, help="platform: the outbox dispatcher's poll, s"
    )
    parser.add_argument("--log-level", default="INFO", help="platform: the trunkline processes' log level")
    parser.add_argument(
        "--event-lanes",
        type=int,
        default=4,
        help="platform: SIP event threads (1: as before lanes)",
    )
    parser.add_argument(
        "--broker-deliveries",
        action="store_true",
        help="platform: events worker sends every delivery through Celery (as before events.local)",
    )
    parser.add_argument(
        "--warmup-calls", type=int, default=5, help="platform: calls placed (and not counted) before the run"
    )
    parser.add_argument(
        "--prompt", choices=("file", "text"), default="file", help="media: FileSource WAV or TextSource"
    )
    parser.add_argument(
        "--digits-delay",
        type=float,
        default=0.3,
        help="media: seconds from the prompt heard to the first digit",
    )
    parser.add_argument(
        "--carrier-rtp",
        choices=RTP_MODES,
        default="stream",
        help="SIPp's audio: rtp_stream threads, or a pcap replayed per call (raw sockets; comparison only)",
    )
    parser.add_argument("--kamailio-children", type=int, default=4)
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="idle CPU window before calls")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (SIPp and Kamailio logs)")
    args = parser.parse_args()
    if args.concurrent > args.workers * MAX_CALLS_PER_WORKER:
        parser.error(f"--concurrent {args.concurrent} > {args.workers} workers x {MAX_CALLS_PER_WORKER}")
    if not kamailio_available():
        parser.error("kamailio is missing: scripts/bootstrap.sh --dev installs it")
    load = CarrierLoad(args.rate, args.concurrent, args.calls or 2 * args.concurrent, args.hold_seconds)
    print(
        f"{args.mode}: {args.workers} workers, {load.calls} calls at {load.rate:g}/s, "
        f"at most {load.concurrent} at once, held {load.hold_seconds:g} s "
        f"(about {load.expected_seconds():.0f} s); load average {load_average()}",
        flush=True,
    )
    console = Console(width=None if sys.stdout.isatty() else 120)
    if args.mode == "pool":
        print_report(run_pool(args, load), console)
    elif args.mode == "media":
        print_media(run_media(args, load), console)
    else:
        print_platform(run_platform(args, load), console)


if __name__ == "__main__":
    main()
