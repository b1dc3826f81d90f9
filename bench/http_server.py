"""The API's request path over HTTPS: HTTP servers side by side, CPU per request from /proc.

Each variant is a process serving the real app (``gateway.server.worker_app``, what every
``trunkline api`` process builds), with one certificate, one PostgreSQL database and one private
redis-server (the send jobs of ``POST /sms``), quotas off as in bench/sms_vs_kannel.py:

  uvicorn        ``trunkline api`` as shipped: uvicorn + httptools + uvloop, with
                 ``GuardedHttpToolsProtocol`` (read timeouts, per-client cap, ACS-shaped 400s)
  uvicorn-plain  uvicorn + httptools + uvloop with uvicorn's own protocol: what the guard costs
  granian        granian's ASGI interface (Rust: hyper, rustls), its own TLS, uvloop
  hypercorn      hypercorn (h11) with uvloop
  base           ``trunkline api`` of git revision ``--baseline REF`` (before/after in one run)

Cases, each loaded by ``wrk`` (2 threads, ``--connections`` keep-alive TLS connections) for
``--seconds``: ``health``, an unauthenticated ``GET /health``; ``sms``, distinct HMAC-signed
``POST /sms?api-version=2021-03-07`` with one recipient each, as ``SmsClient.send`` sends them
(bench/sms_pipeline.py's wrk script). The variants run in turn, ``--rounds`` times, in a new
order each round (the 2-core machine is noisy: compare within a run). CPU is the server's
process tree's user + system time from /proc over the wrk run, divided by the requests wrk
counted; "machine" is how busy both cores were meanwhile (the rest is wrk and the database).

    .venv/bin/python -m bench.http_server [--variants uvicorn granian ...] [--cases health sms]
        [--seconds 5] [--rounds 2] [--connections 32] [--baseline REF] [--log-level WARNING]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import use_secrets_key
from bench.api import WRK_THREADS, wait_healthy
from bench.apt import ensure_apt
from bench.procstat import cpu_seconds, descendants, machine_cpu
from bench.side_by_side import EN_DASH, parse_wrk

REPO = Path(__file__).resolve().parent.parent
APP_FACTORY = "gateway.server:worker_app"
VARIANTS = ("uvicorn", "uvicorn-plain", "granian", "hypercorn")
CASES = ("health", "sms")
SMS_RATE_CEILING = 2000  # distinct signed requests per second of a run: more than any variant answers


@dataclass(frozen=True, slots=True)
class Tls:
    cert: Path
    key: Path
    ca: Path


@dataclass(frozen=True, slots=True)
class Figures:
    variant: str
    case: str
    requests: int
    failed: int  # non-2xx answers and socket errors
    per_second: float
    cpu_ms: float  # the server's CPU per request
    machine_cores: float  # both cores' busy time over the run's wall time (2.0: all of it)


def server_command(variant: str, port: int, tls: Tls) -> list[str]:
    """The command line serving the app as ``variant`` on 127.0.0.1:``port``."""
    if variant in ("uvicorn", "base"):
        return [sys.executable, "-m", "gateway", "api", "--host", "127.0.0.1", "--port", str(port)]
    if variant == "uvicorn-plain":
        return [sys.executable, "-m", "bench.http_server", "--serve-uvicorn-plain", str(port)]
    if variant == "granian":
        return [
            *(sys.executable, "-m", "granian", "--interface", "asgi", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--http", "1"),
            *("--loop", "uvloop", "--no-ws", "--log-level", "warning"),
            *("--ssl-certificate", str(tls.cert), "--ssl-keyfile", str(tls.key)),
            APP_FACTORY,
        ]
    if variant == "hypercorn":
        return [
            *(sys.executable, "-m", "hypercorn", "--worker-class", "uvloop", "--workers", "1"),
            *("--bind", f"127.0.0.1:{port}", "--certfile", str(tls.cert), "--keyfile", str(tls.key)),
            f"{APP_FACTORY}()",  # hypercorn evaluates the name: the call builds the app
        ]
    raise ValueError(f"unknown variant {variant!r}")


def serve_uvicorn_plain(port: int) -> None:
    """uvicorn as ``trunkline api`` runs it (gateway/server.py), with uvicorn's own httptools
    protocol instead of ``GuardedHttpToolsProtocol``."""
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host="127.0.0.1",
        port=port,
        ssl_certfile=os.environ["TRUNKLINE_TLS_CERT_FILE"],
        ssl_keyfile=os.environ["TRUNKLINE_TLS_KEY_FILE"],
        log_config=None,
        access_log=False,
        server_header=False,
        http="httptools",
        loop="uvloop",
    )


@contextmanager
def bench_database() -> Iterator[tuple[str, str]]:
    """A migrated throw-away PostgreSQL database with one resource owning the sender's number:
    (its URL, the resource's access key)."""
    from bench.sms_pipeline import SENDER
    from gateway.core.db import Database
    from gateway.core.migrate import upgrade
    from gateway.resources.service import create_resource
    from tests.gateway.sms.support import give_number
    from tests.support.postgres import throwaway_database

    with throwaway_database("trunkline_bench_http") as url:
        database = Database(url)
        try:
            upgrade(database.engine)
            with database.session() as session:
                resource = create_resource(session, "bench", "https://bench.test/")
                resource_id, key = resource.id, resource.primary_key
            give_number(database, resource_id, SENDER)
        finally:
            database.dispose()
        yield url, key


@contextmanager
def baseline_tree(ref: str) -> Iterator[Path]:
    """The tree of git revision ``ref``, exported to a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench-http-base-") as tmp:
        archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


@contextmanager
def running(
    variant: str, env: dict[str, str], tls: Tls, log: Path, tree: Path = REPO
) -> Iterator[tuple[int, int]]:
    """``variant`` serving on a free port until the block ends: (its port, its pid)."""
    from tests.e2e.helpers import free_port, stop_process

    port = free_port()
    with log.open("ab") as output:
        process = subprocess.Popen(
            server_command(variant, port, tls),
            cwd=tree,
            # The package of the tree the server runs from, ahead of the installed one.
            env={**env, "TRUNKLINE_API_PORT": str(port), "PYTHONPATH": str(tree)},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our ^C reaches the bench, which stops the server itself
        )
    try:
        wait_healthy(port, tls.ca, timeout=90)
        yield port, process.pid
    finally:
        stop_process(process)


def run_wrk(url: str, seconds: float, connections: int, script: Path | None) -> tuple[int, int, float]:
    """wrk for ``seconds``: (requests, failed, requests per second)."""
    command = ["wrk", "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{seconds:g}s"]
    command += ["-s", str(script)] if script else []
    finished = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    summary = parse_wrk(finished.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", finished.stdout)
    return summary.requests, summary.non_2xx + summary.errors, float(rate.group(1)) if rate else 0.0


def measure(
    variant: str, case: str, port: int, pid: int, key: str, args: argparse.Namespace, tmp: Path
) -> Figures:
    from bench.sms_pipeline import wrk_script

    script = None
    path = "/health"
    if case == "sms":
        script = tmp / f"sms-{port}.lua"
        script.write_text(wrk_script(port, key, int(args.seconds * SMS_RATE_CEILING)))
        path = ""
    pids = descendants(pid)
    before = sum(cpu_seconds(p) or 0.0 for p in pids)
    machine_before = machine_cpu()
    requests, failed, rate = run_wrk(
        f"https://127.0.0.1:{port}{path}", args.seconds, args.connections, script
    )
    machine_after = machine_cpu()
    after = sum(cpu_seconds(p) or 0.0 for p in descendants(pid))
    cores = os.cpu_count() or 1
    machine = cores * (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1e-9)
    return Figures(variant, case, requests, failed, rate, 1000 * (after - before) / max(requests, 1), machine)


def summary_table(results: list[Figures], variants: list[str], cases: list[str]) -> str:
    """Markdown: per variant and case, requests/s over the rounds (range) and CPU ms per request
    (mean, and range when rounds differ)."""
    header = (
        "| server | " + " | ".join(f"{case}: requests/s | {case}: CPU ms/request" for case in cases) + " |"
    )
    lines = [header, "|---|" + "---:|---:|" * len(cases)]
    for variant in variants:
        cells = []
        for case in cases:
            runs = [r for r in results if r.variant == variant and r.case == case]
            if not runs:
                cells += ["—", "—"]
                continue
            rates = [r.per_second for r in runs]
            cpus = [r.cpu_ms for r in runs]
            rate = f"{min(rates):,.0f}" if len(runs) == 1 else f"{min(rates):,.0f}{EN_DASH}{max(rates):,.0f}"
            cpu = f"{statistics.fmean(cpus):.3f}"
            if len(runs) > 1:
                cpu += f" ({min(cpus):.3f}{EN_DASH}{max(cpus):.3f})"
            cells += [rate, cpu]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--serve-uvicorn-plain"]:
        serve_uvicorn_plain(int(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk's run per variant and case")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--baseline", metavar="REF", help="also run `trunkline api` of git revision REF")
    parser.add_argument("--log-level", default="WARNING", help="the servers' TRUNKLINE_LOG_LEVEL")
    args = parser.parse_args()
    ensure_apt("wrk", "wrk")
    use_secrets_key()
    from gateway.core.tls import ensure_local_tls
    from tests.e2e.helpers import strong_secret, trunkline_env
    from tests.gateway.events.harness import RedisServer

    variants = list(args.variants) + (["base"] if args.baseline else [])
    results: list[Figures] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-http-")))
        files = ensure_local_tls(tmp / "tls", ["127.0.0.1"])
        tls = Tls(files.cert_file, files.key_file, files.ca_file or files.cert_file)
        url, key = stack.enter_context(bench_database())
        redis = RedisServer(tmp)
        stack.callback(redis.stop)
        env = trunkline_env(tmp / "data", 0, strong_secret(), database_url=url)
        env.update(
            TRUNKLINE_BROKER_URL=redis.url,
            TRUNKLINE_LOG_LEVEL=args.log_level,
            TRUNKLINE_TLS_CERT_FILE=str(tls.cert),
            TRUNKLINE_TLS_KEY_FILE=str(tls.key),
            TRUNKLINE_SMS_QUOTA_PER_RESOURCE_PER_MINUTE="0",
            TRUNKLINE_SMS_QUOTA_PER_COUNTRY_PER_MINUTE="0",
        )
        tree = dict.fromkeys(variants, REPO)
        if args.baseline:
            tree["base"] = stack.enter_context(baseline_tree(args.baseline))
        servers = {
            variant: stack.enter_context(running(variant, env, tls, tmp / f"{variant}.log", tree[variant]))
            for variant in variants
        }
        print(
            f"wrk -t {WRK_THREADS} -c {args.connections} -d {args.seconds:g}s over TLS per run; "
            f"{args.rounds} round(s) of {', '.join(variants)}; PostgreSQL, log level {args.log_level}; "
            f"{os.cpu_count()} cores"
        )
        for variant, (port, pid) in servers.items():  # warm-up: imports, statement caches, pools
            for case in args.cases:
                measure(
                    variant, case, port, pid, key, argparse.Namespace(**{**vars(args), "seconds": 1}), tmp
                )
        for round_number in range(args.rounds):
            order = variants[round_number % len(variants) :] + variants[: round_number % len(variants)]
            for variant in order:
                port, pid = servers[variant]
                for case in args.cases:
                    figures = measure(variant, case, port, pid, key, args, tmp)
                    results.append(figures)
                    print(
                        f"  round {round_number + 1} {variant:14s} {case:7s} {figures.per_second:8,.0f}/s "
                        f"{figures.cpu_ms:7.3f} ms CPU/request  failed {figures.failed:,}  "
                        f"machine busy {figures.machine_cores:.2f} cores"
                    )
    print()
    print(summary_table(results, variants, args.cases))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up the servers on TERM too
    main()
